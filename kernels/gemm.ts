// A register-blocked GEMM template: C[b, m, n] = sum_k A[b, m, k] * B[b, k, n].
//
// Each thread owns a TM x TN block of C held in registers. Per k it loads TM values of A's column
// and TN values of B's row and does TM * TN multiply-adds, so every load is reused TN (or TM)
// times: what CPU adapters (llvmpipe/lavapipe, which run a workgroup's threads as SIMD lanes
// without fast shared memory) need. The operands are not arrays but *sources*: WGSL snippets that
// load A and B and store C. A strided matmul, and conv2d's forward and both backward passes as
// implicit GEMMs (no im2col buffer), are all sources for this one loop (see kernels/conv2d.ts).
//
// params[0..3] = [batches, M, N, K]; sources read their own parameters from params[4...].
// Grid: x over M / (TM * WY), y over N / (TN * WX), z over batches. Workgroups run in x order, so
// consecutive ones share B's columns while those are in cache (B can be a 30 MB vocabulary
// matrix); within a workgroup, neighbouring threads take neighbouring columns.
// Rows and columns past the edge are clamped on load and skipped on store, so no shape needs to
// be a multiple of the block.

import { memoWGSL, PARAMS } from "./common.ts";

export interface GemmConfig {
  tm: number;
  tn: number;
  wx: number;
  wy: number;
  /**
   * Split-K: z slices also split the k loop into this many chunks, each storing a partial C the
   * caller sums (sources see `split`). For a small C with a long k loop, such as a convolution's
   * weight gradient (K = N * OH * OW), which would otherwise keep only a few threads busy.
   */
  splitK?: number;
}

export interface GemmSource {
  /** Bindings (from binding 1) and helper functions. */
  decls: string;
  /** Per thread, after b, m0, n0, M, N, K are known: clamped rows m_i and columns n_j exist. */
  setup: string;
  /** Per k step, before the loads. */
  perK: string;
  /** Expression for A[b, m_i, k]. */
  loadA: (i: number) => string;
  /** Expression for B[b, k, n_j]. */
  loadB: (j: number) => string;
  /** Statement storing v at (b, m0 + i, n0 + j), both in range (partial sum number `split` under split-K). */
  store: (i: number, j: number, v: string) => string;
}

const range = (n: number) => [...Array(n).keys()];

export function gemmWGSL(src: GemmSource, { tm, tn, wx, wy, splitK = 1 }: GemmConfig): string {
  const I = range(tm), J = range(tn);
  const acc = I.flatMap((i) => J.map((j) => `c${i}_${j}`));
  return /* wgsl */ `
${PARAMS}
${src.decls}
@compute @workgroup_size(${wx}, ${wy})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = param(1); let N = param(2); let K = param(3);
  let b = wid.z / ${splitK}u; let split = wid.z % ${splitK}u;
  let kChunk = (K + ${splitK - 1}u) / ${splitK}u;
  let kEnd = min(K, (split + 1u) * kChunk);
  let m0 = (wid.x * ${wy}u + lid.y) * ${tm}u; let n0 = (wid.y * ${wx}u + lid.x) * ${tn}u;
  if (m0 >= M || n0 >= N) { return; }
${I.map((i) => `  let m_${i} = min(m0 + ${i}u, M - 1u);`).join("\n")}
${J.map((j) => `  let n_${j} = min(n0 + ${j}u, N - 1u);`).join("\n")}
${src.setup}
${acc.map((c) => `  var ${c} = 0.0;`).join("\n")}
  for (var k = split * kChunk; k < kEnd; k = k + 1u) {
${src.perK}
${I.map((i) => `    let a${i} = ${src.loadA(i)};`).join("\n")}
${J.map((j) => `    let b${j} = ${src.loadB(j)};`).join("\n")}
${I.flatMap((i) => J.map((j) => `    c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`)).join("\n")}
  }
${
    I.flatMap((i) =>
      J.map((j) => `  if (m0 + ${i}u < M && n0 + ${j}u < N) { ${src.store(i, j, `c${i}_${j}`)} }`)
    ).join("\n")
  }
}`;
}

export function gemmGrid(batches: number, M: number, N: number, c: GemmConfig): [number, number, number] {
  return [Math.ceil(M / (c.tm * c.wy)), Math.ceil(N / (c.tn * c.wx)), batches * (c.splitK ?? 1)];
}

/** Adds split-K partial sums: out[i] = sum_s part[s * n + i].   params: [n, splits] */
export const splitSumWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let n = param(0);
  if (i >= n) { return; }
  var acc = 0.0;
  for (var s = 0u; s < param(1); s = s + 1u) { acc += part[s * n + i]; }
  out[i] = acc;
}`);
