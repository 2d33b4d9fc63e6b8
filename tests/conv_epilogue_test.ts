// conv2dFused (tensor/ops/conv.ts): the conv with its scale / shift / residual / ReLU epilogue in
// the forward kernel, against the unfused ops it replaces, on the float64 CPU reference and in
// every WebGPU forward variant (each forced, and its launch checked by name where the adapter can
// profile); its fallback under autograd; and ResNet in eval mode, fused against unfused.

import assert from "node:assert";
import {
  type Device,
  device,
  type DType,
  F,
  gpu,
  isGradEnabled,
  noGrad,
  randn,
  type Tensor,
  tensor,
  tidy,
} from "../tensor/mod.ts";
import { tuner } from "../tensor/webgpu/tuner.ts";
import { forceVariant, type Variant, VARIANTS } from "../tensor/webgpu/variants.ts";
import { loadWeights, resnet } from "../model/mod.ts";
import { fewCases, relError } from "./helpers/check.ts";

const hasGPU = device() === "webgpu";
const canProfile = hasGPU && gpu().device.features.has("timestamp-query");

interface Parts {
  scale?: boolean;
  shift?: boolean;
  residual?: boolean;
  relu?: boolean;
}
interface FusedCase {
  what: string;
  x: number[];
  w: number[];
  opts: F.Conv2dOptions;
  parts: Parts;
}

// Rows-kernel cases have (Cout / groups) % 4 == 0; the others only run the direct and GEMM kernels.
const CASES: FusedCase[] = [
  {
    what: "scale + shift, groups 2, padding",
    x: [2, 8, 9, 11],
    w: [8, 4, 3, 3],
    opts: { padding: 1, groups: 2 },
    parts: { scale: true, shift: true },
  },
  {
    what: "scale + shift + relu, stride 2",
    x: [1, 4, 10, 19],
    w: [12, 4, 3, 3],
    opts: { stride: 2, padding: 1 },
    parts: { scale: true, shift: true, relu: true },
  },
  {
    what: "scale + shift + residual + relu, rows longer than a chunk",
    x: [2, 8, 5, 30],
    w: [20, 8, 3, 3],
    opts: { padding: 1 },
    parts: { scale: true, shift: true, residual: true, relu: true },
  },
  {
    what: "scale + shift + residual + relu, rows of a multiple of 4 (the planes form)",
    x: [2, 8, 6, 12],
    w: [8, 8, 3, 3],
    opts: { padding: 1 },
    parts: { scale: true, shift: true, residual: true, relu: true },
  },
  {
    what: "scale + shift, groups 2, rows of 8 (the planes form)",
    x: [2, 8, 7, 8],
    w: [8, 4, 3, 3],
    opts: { padding: 1, groups: 2 },
    parts: { scale: true, shift: true },
  },
  {
    what: "shift + relu, 1 x 3 taps, rows of 16 (the planes form)",
    x: [1, 4, 5, 16],
    w: [12, 4, 1, 3],
    opts: { padding: [0, 1] },
    parts: { shift: true, relu: true },
  },
  {
    what: "bias (shift) + residual + relu, ragged groups, dilation, stride [2, 1]",
    x: [2, 4, 7, 6],
    w: [6, 2, 3, 3],
    opts: { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 },
    parts: { shift: true, residual: true, relu: true },
  },
  {
    what: "1x1 stride 1 (matmul + epilogue pass): scale + shift + residual + relu",
    x: [2, 6, 5, 7],
    w: [12, 6, 1, 1],
    opts: {},
    parts: { scale: true, shift: true, residual: true, relu: true },
  },
  {
    what: "1x1 stride 2 (a downsample): scale + shift",
    x: [2, 8, 9, 9],
    w: [16, 8, 1, 1],
    opts: { stride: 2 },
    parts: { scale: true, shift: true },
  },
  {
    what: "7x7 stride 2 stem, 3 input channels: scale + shift + relu",
    x: [1, 3, 17, 15],
    w: [8, 3, 7, 7],
    opts: { stride: 2, padding: 3 },
    parts: { scale: true, shift: true, relu: true },
  },
  {
    what: "scale + shift + residual, a 5 x 3 window, stride 1",
    x: [1, 4, 12, 13],
    w: [8, 4, 5, 3],
    opts: { padding: [2, 1] },
    parts: { scale: true, shift: true, residual: true },
  },
  {
    what: "scale alone, relu alone on ragged sizes",
    x: [3, 5, 6, 7],
    w: [3, 5, 2, 3],
    opts: { padding: [1, 0] },
    parts: { scale: true, relu: true },
  },
];

const cpu64 = { device: "cpu" as Device, dtype: "f64" as DType };
const empty = (shape: number[]) => tensor(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape, cpu64);
const outShape = (c: FusedCase) =>
  tidy(() => noGrad(() => [...F.conv2d(empty(c.x), empty(c.w), null, c.opts).shape]));

/** f32-representable values, so both devices see the same numbers. */
async function values(shape: number[]): Promise<Float64Array> {
  const t = randn(shape, cpu64);
  const v = Float64Array.from(await t.toArray(), Math.fround);
  t.dispose();
  return v;
}

interface Inputs {
  x: Float64Array;
  w: Float64Array;
  scale: Float64Array;
  shift: Float64Array;
  residual: Float64Array;
}
async function sample(c: FusedCase): Promise<Inputs> {
  const C = c.w[0];
  return {
    x: await values(c.x),
    w: await values(c.w),
    scale: await values([C]),
    shift: await values([C]),
    residual: await values(outShape(c)),
  };
}

/** The case's tensors on a device, each part only when the case has it. */
function build(c: FusedCase, v: Inputs, dev: Device, requiresGrad = false) {
  const o = { device: dev, dtype: (dev === "cpu" ? "f64" : "f32") as DType, requiresGrad };
  const C = c.w[0], p = c.parts;
  return {
    x: tensor(v.x, c.x, o),
    w: tensor(v.w, c.w, o),
    scale: p.scale ? tensor(v.scale, [C], o) : null,
    shift: p.shift ? tensor(v.shift, [C], o) : null,
    residual: p.residual ? tensor(v.residual, outShape(c), o) : null,
  };
}

type Built = ReturnType<typeof build>;
const fused = (c: FusedCase, t: Built) =>
  F.conv2dFused(
    t.x,
    t.w,
    { scale: t.scale, shift: t.shift, residual: t.residual, relu: c.parts.relu },
    c.opts,
  );

/** What the fused op replaces: conv, then each part as its own op. */
function unfused(c: FusedCase, t: Built): Tensor {
  const channels = (v: Tensor) => F.reshape(v, [1, c.w[0], 1, 1]);
  let y = F.conv2d(t.x, t.w, null, c.opts);
  if (t.scale) y = F.mul(y, channels(t.scale));
  if (t.shift) y = F.add(y, channels(t.shift));
  if (t.residual) y = F.add(y, t.residual);
  return c.parts.relu ? F.relu(y) : y;
}

async function evaluate(f: () => Tensor): Promise<ArrayLike<number>> {
  const y = tidy(() => noGrad(f));
  const v = await y.toArray();
  y.dispose();
  return v;
}

Deno.test("conv2dFused on the f64 CPU reference equals the unfused ops", async () => {
  for (const c of CASES) {
    const v = await sample(c);
    const t = build(c, v, "cpu");
    const [got, want] = [await evaluate(() => fused(c, t)), await evaluate(() => unfused(c, t))];
    const e = relError(got, want);
    assert(e <= 1e-13, `${c.what}: error ${e.toExponential(2)}`);
    // The epilogue did something: the plain conv differs from the reference.
    const plain = await evaluate(() => F.conv2d(t.x, t.w, null, c.opts));
    assert(relError(plain, want) > 1e-3, `${c.what}: the epilogue changes nothing in this case`);
  }
});

const isPointwise = (c: FusedCase) =>
  c.w[2] === 1 && c.w[3] === 1 && !c.opts.stride && !c.opts.padding && !c.opts.groups;
// the rows kernel needs (Cout / groups) % 4 == 0; its texture form also stride 1 and no dilation,
// and its planes form rows of a multiple of 4
const rowsFit = (c: FusedCase, v: Variant) =>
  (c.w[0] / (c.opts.groups ?? 1)) % 4 === 0 &&
  (!v.rows?.texture || [c.opts.stride ?? 1, c.opts.dilation ?? 1].flat().every((n) => n === 1)) &&
  (!v.rows?.planes || c.x[3] % 4 === 0);

for (const v of VARIANTS.conv2d) {
  Deno.test({
    name: `conv2dFused, conv2d variant ${v.name}: WebGPU equals the f64 unfused reference`,
    ignore: !hasGPU,
  }, async () => {
    forceVariant("conv2d", v.name);
    try {
      let ran = 0;
      // on CPU adapters, three that hold every epilogue part: groups, stride 2, and ragged groups with dilation
      for (const c of fewCases(v) ? [CASES[0], CASES[1], CASES[6]] : CASES) {
        const vals = await sample(c);
        const want = await evaluate(() => unfused(c, build(c, vals, "cpu")));
        const t = build(c, vals, "webgpu");
        if (canProfile) gpu().startProfile();
        const got = await evaluate(() => fused(c, t));
        const launched = canProfile ? (await gpu().stopProfile()).map((r) => r.name) : [];
        const e = relError(got, want);
        assert(e <= 1e-5, `${c.what}: error ${e.toExponential(2)}`);
        if (!canProfile) continue;
        // the forced variant ran, with the epilogue compiled in (or, for 1x1 stride 1, the pass)
        const expected = isPointwise(c)
          ? "conv2d_epilogue"
          : !v.rows || rowsFit(c, v)
          ? `conv2d_forward_fused_${v.name}`
          : null;
        if (expected === null) continue;
        assert(launched.includes(expected), `${c.what}: launched ${launched}, not ${expected}`);
        if (!isPointwise(c)) ran++;
      }
      if (canProfile) assert(ran >= 3, `variant ${v.name} ran on only ${ran} cases`);
    } finally {
      forceVariant("conv2d", null);
    }
  });
}

// No forward variant splits K today (the forward GEMM's store has no partial-sum offset); one added
// for this test, and forced, shows that a fused call is never given one.
Deno.test({ name: "conv2dFused never takes a split-K forward variant", ignore: !canProfile }, async () => {
  const split = { name: "gemm4x4s4_test", gemm: { tm: 4, tn: 4, wx: 8, wy: 8, splitK: 4 } };
  VARIANTS.conv2d.push(split);
  forceVariant("conv2d", split.name);
  try {
    const c = CASES[3], vals = await sample(c);
    const want = await evaluate(() => unfused(c, build(c, vals, "cpu")));
    const t = build(c, vals, "webgpu");
    gpu().startProfile();
    const got = await evaluate(() => fused(c, t));
    const ran = (await gpu().stopProfile()).map((r) => r.name);
    assert(!ran.some((n) => n.endsWith(split.name) || n === "split_sum"), `fused launched ${ran}`);
    assert(relError(got, want) <= 1e-5);
  } finally {
    forceVariant("conv2d", null);
    VARIANTS.conv2d.splice(VARIANTS.conv2d.indexOf(split), 1);
  }
});

Deno.test("conv2dFused under autograd runs the unfused ops: same values and gradients", async () => {
  const c = CASES[2];
  const v = await sample(c);
  const grads = async (f: (c: FusedCase, t: Built) => Tensor) => {
    const t = build(c, v, "cpu", true);
    assert(isGradEnabled());
    const y = f(c, t);
    const wt = tensor(Float64Array.from({ length: y.size }, (_, i) => Math.sin(i)), y.shape, cpu64);
    F.sum(F.mul(y, wt)).backward();
    return [
      await y.toArray(),
      ...await Promise.all([t.x, t.w, t.scale!, t.shift!, t.residual!].map((l) => l.grad!.toArray())),
    ];
  };
  const [got, want] = [await grads(fused), await grads(unfused)];
  got.forEach((g, i) => assert(relError(g, want[i]) <= 1e-13, `output ${i}`));
});

Deno.test("conv2dFused rejects a scale, shift or residual of the wrong shape", () => {
  const x = empty([1, 4, 5, 5]), w = empty([8, 4, 3, 3]);
  assert.throws(() => F.conv2dFused(x, w, { scale: empty([4]) }), /scale is \[4\].*expected \[8\]/);
  assert.throws(() => F.conv2dFused(x, w, { shift: empty([1, 8]) }), /shift/);
  assert.throws(
    () => F.conv2dFused(x, w, { residual: empty([1, 8, 5, 5]) }),
    /residual.*expected \[1,8,3,3\]/,
  );
});

// ResNet in eval mode: noGrad takes the fused path, recording autograd keeps the modules' own ops.
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const NETS = [
  { name: "model_resnet18", depth: 18, widths: [8, 16, 32, 64] },
  { name: "model_resnet50", depth: 50, widths: [4, 8, 16, 32] },
] as const;
const TARGETS: [Device, DType, number][] = [["cpu", "f64", 1e-12]];
if (hasGPU) TARGETS.push(["webgpu", "f32", 1e-5]);

for (const { name, depth, widths } of NETS) {
  for (const [dev, dtype, tol] of TARGETS) {
    Deno.test(`resnet${depth} eval (${dev} ${dtype}): fused equals unfused`, async () => {
      const net = resnet(depth, { widths: [...widths], numClasses: 10, device: dev, dtype });
      // the fixture's batchnorm statistics and affine parameters are random, so shift and scale matter
      await loadWeights(net, fixture(`${name}.pth`));
      net.eval();
      const x = tensor(await values([2, 3, 40, 36]), [2, 3, 40, 36], { device: dev, dtype });
      const launches = () => hasGPU ? gpu().dispatches : 0;
      // first calls may tune kernels (more launches): count launches of later calls
      tidy(() => {
        noGrad(() => net.forward(x));
        net.forward(x);
      });
      await tuner.settled();
      let at = launches();
      const fast = tidy(() => noGrad(() => net.forward(x)));
      const fusedLaunches = launches() - at;
      at = launches();
      const slow = tidy(() => net.forward(x)); // parameters require grad: autograd records, no fusion
      const unfusedLaunches = launches() - at;
      assert(slow.requiresGrad && !fast.requiresGrad);
      const e = relError(await fast.toArray(), await slow.toArray());
      assert(e <= tol, `logits: fused against unfused error ${e.toExponential(2)} > ${tol}`);
      if (dev === "webgpu") {
        assert(
          fusedLaunches < unfusedLaunches,
          `fused forward launched ${fusedLaunches} kernels, unfused ${unfusedLaunches}`,
        );
      }
      for (const t of [x, fast, slow]) t.dispose();
      net.dispose();
    });
  }
}

Deno.test("resnet in training mode normalises with batch statistics (no fusion), even without autograd", async () => {
  const net = resnet(18, { widths: [4, 4, 8, 8], numClasses: 0, ...cpu64 }).train();
  const x = tensor(await values([2, 3, 32, 32]), [2, 3, 32, 32], cpu64);
  const before = Float64Array.from(await net.bn1.runningMean.toArray());
  const y = tidy(() => noGrad(() => net.features(x)));
  // a training-mode batchnorm moves its running mean toward the batch's; the fused path never would
  const after = await net.bn1.runningMean.toArray();
  assert(relError(after, before) > 1e-6, "bn1's running mean did not move: training-mode batchnorm skipped");
  for (const t of [x, y]) t.dispose();
  net.dispose();
});
