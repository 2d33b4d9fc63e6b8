// ResNet parity with torchvision (tools/make_model_fixtures.py): narrow ResNet-18 and ResNet-50 with
// random weights and batchnorm statistics, loaded from .pth and from .safetensors, logits and layer4
// features; torchvision's names for the full-size models; the fine-tuning policy. With torch
// installed, also the full ResNet-101.

import assert from "node:assert";
import { type Device, device, type DType, noGrad, tensor, tidy } from "../tensor/mod.ts";
import { readSafetensors } from "../tensor/io/safetensors.ts";
import { relError } from "./helpers/check.ts";
import { type Depth, loadWeights, type ResNet, resnet } from "../model/mod.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const NARROW: [string, Depth, [number, number, number, number]][] = [
  ["model_resnet18", 18, [8, 16, 32, 64]],
  ["model_resnet50", 50, [4, 8, 16, 32]],
];

async function check(net: ResNet, io: string, dev: Device, dtype: DType, tol: number, where: string) {
  const { tensors } = await readSafetensors(io);
  const x = tensors.get("input")!;
  const out = tidy(() =>
    noGrad(() => {
      const input = tensor(x.data, x.shape, { device: dev, dtype });
      return { logits: net.forward(input), features: net.features(input) };
    })
  );
  for (const k of ["logits", "features"] as const) {
    const ref = tensors.get(k)!;
    assert.deepEqual(out[k].shape, ref.shape, `${where} ${k} shape`);
    const e = relError(await out[k].toArray(), ref.data);
    if (Deno.env.get("PARITY_VERBOSE")) {
      console.log(`${where} ${k}: max error / max |ref| = ${e.toExponential(2)}`);
    }
    assert(e <= tol, `${where} ${k}: error ${e.toExponential(2)} > ${tol}`);
    out[k].dispose();
  }
}

const TARGETS: [Device, DType, number][] = [["cpu", "f64", 1e-9]];
if (device() === "webgpu") TARGETS.push(["webgpu", "f32", 1e-4]);

for (const [name, depth, widths] of NARROW) {
  for (const [dev, dtype, tol] of TARGETS) {
    for (const ext of dev === "cpu" ? [".pth"] : [".pth", ".safetensors"]) {
      Deno.test(`resnet${depth} parity (narrow, ${ext}, ${dev} ${dtype}): logits and features`, async () => {
        const net = resnet(depth, { widths, numClasses: 10, device: dev, dtype });
        await loadWeights(net, fixture(name + ext));
        net.eval();
        await check(net, fixture(`${name}_io.safetensors`), dev, dtype, tol, `resnet${depth} ${ext} ${dev}`);
        net.dispose();
      });
    }
  }
}

Deno.test("resnet: torchvision's parameter and buffer names", () => {
  // Names do not depend on the widths; narrow keeps the test fast (the full-size count is checked
  // in the ResNet-101 parity test).
  const net = resnet(101, { device: "cpu", widths: [1, 1, 1, 1] });
  const names = [...net.stateDict().keys()];
  for (
    const n of [
      "conv1.weight",
      "layer3.22.bn2.running_var",
      "layer1.0.downsample.0.weight",
      "layer4.2.bn3.num_batches_tracked",
      "fc.bias",
    ]
  ) assert(names.includes(n), `missing ${n}`);
  assert.equal(names.length, 626); // len(torchvision.models.resnet101().state_dict())
  net.dispose();
  const r18 = resnet(18, { device: "cpu", numClasses: 0 });
  assert.equal(r18.featureDim, 512);
  assert(![...r18.stateDict().keys()].some((k) => k.startsWith("fc.")));
  r18.dispose();
});

Deno.test("resnet: features are 49 tokens at 224 input", () => {
  const net = resnet(50, { widths: [4, 8, 16, 32], numClasses: 0 }).eval();
  const f = tidy(() => noGrad(() => net.features(tensor(new Float32Array(3 * 224 * 224), [1, 3, 224, 224]))));
  assert.deepEqual(f.shape, [1, 49, 128]);
  f.dispose();
  net.dispose();
});

Deno.test("resnet: output stride 32, 16 and 8 give 2 x 2, 4 x 4 and 8 x 8 tokens at 64 px, same parameters", () => {
  const counts = new Set<number>();
  // without the stem's max-pool the later stages take its stride: the same token grids
  for (
    const [os, tokens, maxPool] of [[32, 4, true], [16, 16, true], [8, 64, true], [16, 16, false], [
      8,
      64,
      false,
    ]] as const
  ) {
    const net = resnet(18, { widths: [4, 4, 8, 8], numClasses: 0, outputStride: os, maxPool, device: "cpu" })
      .eval();
    const x = tensor(new Float32Array(3 * 64 * 64), [1, 3, 64, 64], { device: "cpu" });
    const f = tidy(() => noGrad(() => net.features(x)));
    assert.deepEqual(f.shape, [1, tokens, 8], `output stride ${os}${maxPool ? "" : " without the max-pool"}`);
    counts.add(net.parameters().reduce((n, p) => n + p.size, 0));
    f.dispose();
    net.dispose();
  }
  assert.equal(counts.size, 1, "the output stride changes no parameter");
  assert.throws(
    () => resnet(18, { outputStride: 4 as 8, numClasses: 0 }),
    /outputStride must be 8, 16 or 32/,
  );
  assert.throws(() => resnet(18, { maxPool: false, numClasses: 0 }), /output stride is at most 16/);
});

Deno.test("resnet: a 3 x 3 stem keeps the token grid and has 3 x 3 weights", () => {
  const x = tensor(Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i)), [1, 3, 64, 64], {
    device: "cpu",
  });
  for (const stemKernel of [7, 3]) {
    const net = resnet(10, {
      widths: [4, 4, 8, 8],
      numClasses: 0,
      outputStride: 8,
      stemKernel,
      device: "cpu",
    })
      .eval();
    assert.deepEqual(net.conv1.weight.shape, [4, 3, stemKernel, stemKernel]);
    const f = tidy(() => noGrad(() => net.features(x)));
    assert.deepEqual(f.shape, [1, 64, 8]);
    f.dispose();
    net.dispose();
  }
  assert.throws(() => resnet(10, { stemKernel: 4, numClasses: 0 }), /stemKernel must be an odd number/);
});

Deno.test("resnet: fine-tuning policy freezes stem, layer1, layer2 and keeps batchnorm in inference", () => {
  const net = resnet(18, { widths: [4, 4, 4, 4], numClasses: 0, device: "cpu" }).finetune();
  net.train();
  const trains = (p: string) =>
    net.namedParameters().filter(([n]) => n.startsWith(p)).every(([, t]) => t.requiresGrad);
  const frozen = (p: string) =>
    net.namedParameters().filter(([n]) => n.startsWith(p)).every(([, t]) => !t.requiresGrad);
  assert(frozen("conv1") && frozen("bn1") && frozen("layer1") && frozen("layer2"));
  assert(trains("layer3") && trains("layer4"));
  assert.equal(
    net.trainableParameters().length,
    net.namedParameters().filter(([n]) => /^layer[34]/.test(n)).length,
  );
  assert(net.layer3.training, "modules other than batchnorm follow train()");
  const bns = (m: ResNet) => m.namedBuffers().filter(([n]) => n.endsWith("running_mean")).length;
  assert(bns(net) > 0);
  // Every BatchNorm stays in eval; with frozenBatchNorm off, only the frozen stages' do.
  assert(!net.layer4.layers[0].children().some(([n, m]) => n.startsWith("bn") && m.training));
  net.finetune({ trainable: ["layer2", "layer3", "layer4"], frozenBatchNorm: false }).train();
  assert(net.layer4.layers[0].children().some(([n, m]) => n.startsWith("bn") && m.training));
  assert(
    !net.bn1.training && !net.layer1.layers[0].children().some(([n, m]) => n.startsWith("bn") && m.training),
  );
  net.dispose();
});

const hasTorch =
  new Deno.Command("/usr/bin/python3", { args: ["-c", "import torch, torchvision"], stderr: "null" })
    .outputSync().success;

Deno.test({
  name: `resnet101 parity (full size, .pth) against torchvision${
    hasTorch ? "" : ": skipped, needs python3 with torch"
  }`,
  ignore: !hasTorch,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const size = Number(Deno.env.get("RESNET101_SIZE") ?? 64);
      const tool = new URL("../tools/make_model_fixtures.py", import.meta.url).pathname;
      const run = new Deno.Command("/usr/bin/python3", {
        args: [tool, "resnet", "--depth", "101", "--size", `${size}`, "--out", dir],
      });
      const r = await run.output();
      assert(r.success, new TextDecoder().decode(r.stderr));
      const net = resnet(101);
      // sum(p.numel() for p in torchvision.models.resnet101().parameters())
      assert.equal(net.parameters().reduce((s, p) => s + p.size, 0), 44_549_160);
      await loadWeights(net, `${dir}/resnet101.pth`);
      net.eval();
      await check(net, `${dir}/resnet101_io.safetensors`, device(), "f32", 1e-4, "resnet101 full");
      net.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
