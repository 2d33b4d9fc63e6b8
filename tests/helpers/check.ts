// The three checks every op passes (tests/ops_test.ts):
//   1. gradient check on the CPU reference in float64 by central differences,
//   2. WebGPU forward against the CPU reference,
//   3. WebGPU backward against the CPU reference's backward.
// The scalar being differentiated is sum(op(inputs) * w) for a fixed random w, so every output
// element's gradient path is exercised.

import { F, gpu, noGrad, rand, randn, type Tensor, tensor, tidy } from "../../tensor/mod.ts";
import type { Device } from "../../tensor/mod.ts";

export type Input =
  | { shape: number[]; low?: number; high?: number; noGrad?: boolean }
  | { shape: number[]; index: number[] }; // i32 values, given explicitly

export interface Case {
  inputs: Input[];
  fn: (...xs: Tensor[]) => Tensor;
  /** skip the non-contiguous variant (e.g. for 1-d inputs it is the same) */
  contiguousOnly?: boolean;
}

/** max |a - b| / max |b|: error relative to the reference tensor's scale. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 1e-12;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) !== Number.isNaN(b[i])) return Infinity;
    if (Number.isNaN(b[i])) continue;
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

const isIndex = (i: Input): i is { shape: number[]; index: number[] } => "index" in i;

/** Values for each input (f32-representable, so both devices see the same numbers). */
export async function sampleValues(inputs: Input[]): Promise<Float64Array[]> {
  return await Promise.all(inputs.map(async (inp) => {
    if (isIndex(inp)) return Float64Array.from(inp.index);
    const t = noGrad(() => (inp.low !== undefined
      ? rand(inp.shape, { low: inp.low, high: inp.high ?? 1, device: "cpu" })
      : randn(inp.shape, { device: "cpu" }))
    );
    const v = Float64Array.from(await t.toArray());
    t.dispose();
    return v;
  }));
}

/**
 * Builds the inputs on a device. Each float input is a leaf (requiresGrad); with `strided`, the
 * leaf is stored transposed and the op sees a permuted, non-contiguous view of it.
 */
export function makeInputs(inputs: Input[], values: Float64Array[], device: Device, strided: boolean) {
  const dtype = device === "cpu" ? "f64" : "f32";
  const leaves: (Tensor | null)[] = [], args: Tensor[] = [];
  inputs.forEach((inp, k) => {
    if (isIndex(inp)) {
      leaves.push(null);
      args.push(tensor(Int32Array.from(values[k]), inp.shape, { device, dtype: "i32" }));
      return;
    }
    const rev = inp.shape.map((_, i) => inp.shape.length - 1 - i);
    const useStride = strided && inp.shape.filter((d) => d > 1).length > 1;
    let data = values[k];
    if (useStride) {
      const t = tensor(values[k], inp.shape, { device: "cpu", dtype: "f64" });
      data = F.contiguous(F.permute(t, rev)).storage.host as Float64Array;
    }
    const leaf = tensor(data, useStride ? rev.map((i) => inp.shape[i]) : inp.shape, {
      device,
      dtype,
      requiresGrad: !inp.noGrad,
    });
    leaves.push(inp.noGrad ? null : leaf);
    args.push(useStride ? F.permute(leaf, rev) : leaf);
  });
  return { leaves, args };
}

/** Forward output and gradients of sum(fn(args) * w) with respect to each leaf. */
export async function run(
  c: Case,
  values: Float64Array[],
  device: Device,
  strided: boolean,
  w?: Float64Array,
) {
  const res = tidy(() => {
    const { leaves, args } = makeInputs(c.inputs, values, device, strided);
    const y = c.fn(...args);
    const wt = tensor(w ?? new Float64Array(y.size).fill(1), y.shape, { device, dtype: y.dtype });
    F.sum(F.mul(y, wt)).backward();
    return { y, grads: leaves.map((l) => l?.grad ?? null) };
  });
  const y = await res.y.toArray();
  const grads = await Promise.all(res.grads.map((g) => g?.toArray() ?? null));
  res.y.dispose();
  for (const [i, g] of res.grads.entries()) {
    g?.dispose();
    void i;
  }
  return { y, grads };
}

/** Central differences of sum(fn(args) * w) in float64 on the CPU, one leaf element at a time. */
export function numericGrads(c: Case, values: Float64Array[], strided: boolean, w: Float64Array, h = 1e-6) {
  return tidy(() => {
    const { leaves, args } = makeInputs(c.inputs, values, "cpu", strided);
    const loss = () => {
      const y = noGrad(() => c.fn(...args));
      const hy = y.isContiguous ? y.storage.host!.subarray(y.offset) : F.contiguous(y).storage.host!;
      let s = 0;
      for (let i = 0; i < w.length; i++) s += hy[i] * w[i];
      return s;
    };
    return leaves.map((leaf) => {
      if (!leaf) return null;
      const x = leaf.storage.host as Float64Array, g = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i];
        x[i] = x0 + h;
        const up = loss();
        x[i] = x0 - h;
        const down = loss();
        x[i] = x0;
        g[i] = (up - down) / (2 * h);
      }
      return g;
    });
  });
}

export async function weightsFor(c: Case, values: Float64Array[]): Promise<Float64Array> {
  const n = noGrad(() =>
    tidy(() => {
      const { args } = makeInputs(c.inputs, values, "cpu", false);
      return c.fn(...args).size;
    })
  );
  const t = randn([n], { device: "cpu", dtype: "f64" });
  const w = Float64Array.from(await t.toArray());
  t.dispose();
  return w;
}

/**
 * Whether variant v runs a few chosen cases rather than all: a gpuOnly variant on a CPU adapter.
 * Such variants run there only in the tests, and each of their pipelines costs compile time:
 * Mesa's GL driver compiles WGSL's zero-initialisation of workgroup memory in time quadratic in
 * its elements, 3-40 s a pipeline on a 2-core Zen 4 (bench/RESULTS.md step 74), and conv2d's
 * compile in each case's geometry. Real GPUs run every case.
 */
export const fewCases = (v: { gpuOnly?: boolean }) => v.gpuOnly === true && gpu().adapter.fallback;
