// Modules: PyTorch-style names, state dicts (and their errors), train/eval, safetensors round trip.

import assert from "node:assert";
import { device, F, loadSafetensors, nn, saveSafetensors, tensor, zeros } from "../tensor/mod.ts";
import { relError } from "./helpers/check.ts";

class Block extends nn.Module {
  conv1 = new nn.Conv2d(3, 4, 3, { bias: false, device: "cpu" });
  bn1 = new nn.BatchNorm2d(4, { device: "cpu" });
  downsample = new nn.Sequential(
    new nn.Conv2d(3, 4, 1, { bias: false, device: "cpu" }),
    new nn.BatchNorm2d(4, { device: "cpu" }),
  );
}
class Net extends nn.Module {
  layer1 = [new Block(), new Block()];
  fc = new nn.Linear(4, 2, { device: "cpu" });
}

Deno.test("parameter and buffer names follow PyTorch's dotted convention", () => {
  const names = [...new Net().stateDict().keys()];
  for (
    const k of [
      "layer1.0.conv1.weight",
      "layer1.1.bn1.running_var",
      "layer1.0.bn1.num_batches_tracked",
      "layer1.0.downsample.0.weight",
      "layer1.1.downsample.1.bias",
      "fc.weight",
      "fc.bias",
    ]
  ) assert(names.includes(k), `missing ${k} in ${names.join(", ")}`);
  assert.equal(new Net().parameters().length, 2 * (1 + 2 + 1 + 2) + 2);
});

Deno.test("loadStateDict lists missing, unexpected and mis-shaped keys; non-strict loads the rest", async () => {
  const src = new Net(), dst = new Net();
  const dict = new Map(src.stateDict());
  dict.delete("fc.bias");
  dict.set("fc.extra", zeros([1], { device: "cpu" }));
  assert.throws(
    () => dst.loadStateDict(dict),
    (e: Error) => /missing: fc\.bias/.test(e.message) && /unexpected: fc\.extra/.test(e.message),
  );
  const r = dst.loadStateDict(dict, { strict: false });
  assert.deepEqual(r, { missing: ["fc.bias"], unexpected: ["fc.extra"] });
  assert.deepEqual(await dst.fc.weight.toArray(), await src.fc.weight.toArray());
  dict.set("fc.weight", zeros([3, 4], { device: "cpu" }));
  assert.throws(
    () => dst.loadStateDict(dict, { strict: false }),
    /fc\.weight: expected \[2,4\] f32, got \[3,4\]/,
  );
});

Deno.test("train() and eval() reach every child; dropout and batchnorm follow them", async () => {
  const net = new nn.Sequential(new nn.Dropout(0.5), new nn.BatchNorm2d(2, { device: "cpu" }));
  net.eval();
  assert(net.layers.every((m) => !m.training));
  const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2], { device: "cpu" });
  // eval: running stats are (0, 1), so batchnorm is x / sqrt(1 + eps) and dropout the identity
  const y = await net.forward(x).toArray();
  assert(Math.abs(y[7] - 8 / Math.sqrt(1 + 1e-5)) < 1e-5);
  net.train();
  F.batchNorm2d(
    x,
    (net.layers[1] as nn.BatchNorm2d).runningMean,
    (net.layers[1] as nn.BatchNorm2d).runningVar,
    null,
    null,
    { training: true },
  );
  assert.deepEqual(
    [...await (net.layers[1] as nn.BatchNorm2d).runningMean.toArray()].map((v) => +v.toFixed(5)),
    [0.25, 0.65],
  );
});

Deno.test("state dicts round-trip through safetensors", async () => {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  try {
    const a = new Net(), b = new Net();
    await saveSafetensors(path, a.stateDict());
    b.loadStateDict(await loadSafetensors(path, { device: "cpu" }));
    for (const [k, t] of a.stateDict()) {
      assert.deepEqual(await b.stateDict().get(k)!.toArray(), await t.toArray(), k);
    }
  } finally {
    await Deno.remove(path);
  }
});

for (const dev of ["cpu", "webgpu"] as const) {
  Deno.test({
    name: `training batchnorm moves the running mean and unbiased variance by the momentum (${dev})`,
    ignore: dev === "webgpu" && device() !== "webgpu",
  }, async () => {
    const bn = new nn.BatchNorm2d(2, { device: dev });
    const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2], { device: dev });
    for (let i = 0; i < 2; i++) {
      F.batchNorm2d(x, bn.runningMean, bn.runningVar, null, null, { training: true }).dispose();
    }
    // per channel: mean 2.5 / 6.5, unbiased variance 5/3; twice with momentum 0.1
    const after2 = (init: number, v: number) => (init * 0.9 + v * 0.1) * 0.9 + v * 0.1;
    const [mean, variance] = [await bn.runningMean.toArray(), await bn.runningVar.toArray()];
    assert(relError(mean, [after2(0, 2.5), after2(0, 6.5)]) < 1e-6, `mean ${mean}`);
    assert(relError(variance, [after2(1, 5 / 3), after2(1, 5 / 3)]) < 1e-5, `variance ${variance}`);
  });
}
