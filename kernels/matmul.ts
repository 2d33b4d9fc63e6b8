// matmul: out[b, m, n] = sum_k A[b, m, k] * B[b, k, n] for strided operands.
//
// params: [batches, M, N, K, batch shape(9), A batch view(9), A stride m, A stride k,
//          B batch view(9), B stride k, B stride n]
// Operands are read through strides, so transposed operands (A^T in the weight gradient, B^T in
// a Linear layer) and broadcast batch dims (stride 0) need no copies. Output is contiguous.
//
// Variants (each output sums over k in order, so results agree to f32 rounding):
//   naive     one output per thread; the reference and the fallback
//   blocked   the register-blocked GEMM template (kernels/gemm.ts) with TM x TN per thread
//   vec4      tm x 4*tnv per thread with vec4 loads, for aligned operands: the CPU adapter's kernel
//   tiled     workgroup-tiled, for real GPUs (kernels/matmul_tiled.ts)

import { MAIN, memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";
import { type GemmConfig, gemmWGSL } from "./gemm.ts";

const BINDINGS = /* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b_: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`;

export const matmulNaiveWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
${BINDINGS}
${VIEW_OFFSET}
${MAIN}
  let M = param(1); let N = param(2); let K = param(3);
  if (i >= param(0) * M * N) { return; }
  let n = i % N;
  let m = (i / N) % M;
  let batch = i / (M * N);
  let a0 = view_offset(batch, 4u, 13u) + m * param(22);
  let b0 = view_offset(batch, 4u, 24u) + n * param(34);
  let sak = param(23); let sbk = param(33);
  var acc = 0.0;
  for (var k = 0u; k < K; k = k + 1u) {
    acc = fma(a[a0 + k * sak], b_[b0 + k * sbk], acc);
  }
  out[i] = acc;
}`);

export const matmulBlockedWGSL = memoWGSL((cfg: GemmConfig) =>
  gemmWGSL({
    decls: BINDINGS + VIEW_OFFSET,
    setup: `  let aBase = view_offset(b, 4u, 13u); let bBase = view_offset(b, 4u, 24u);
  let sam = param(22); let sak = param(23); let sbk = param(33); let sbn = param(34);
${[...Array(cfg.tm).keys()].map((i) => `  let ar${i} = aBase + m_${i} * sam;`).join("\n")}
${[...Array(cfg.tn).keys()].map((j) => `  let bc${j} = bBase + n_${j} * sbn;`).join("\n")}`,
    perK: "    let ak = k * sak; let bk = k * sbk;",
    loadA: (i) => `a[ar${i} + ak]`,
    loadB: (j) => `b_[bc${j} + bk]`,
    store: (i, j, v) => `out[(b * M + m0 + ${i}u) * N + n0 + ${j}u] = ${v};`,
  }, cfg)
);

/** Which dim of an operand is contiguous: A is [M, K] ("k": row-major, "m": transposed), B is [K, N]. */
export type Vec4Layout = { a: "k" | "m"; b: "n" | "k" };

/**
 * The vec4 kernel's block per thread: `tm` rows x `tnv` vec4s (4 * tnv columns) of C. With
 * `splitK` S, workgroup z = batch * S + s sums the s-th of S runs of k into partial sums
 * [S, batch, M, N], which split_sum adds (kernels/gemm.ts): a weight gradient's 96 x 96 output
 * over k = 800 is nine 32 x 32 blocks, one workgroup on one core, until its k is split.
 */
export interface Vec4Block {
  tm: number;
  tnv: number;
  splitK?: number;
  /** consecutive threads (SIMD lanes) take consecutive row blocks instead of column blocks */
  mLanes?: boolean;
}

/**
 * vec4 variant for aligned operands: loads 4 consecutive floats at once along each operand's
 * contiguous dim. Each thread owns `tm` rows x `tnv` vec4 columns of C in registers.
 *   a=k, b=n   C_ij += a_i.x * B[k, j] + a_i.y * B[k+1, j] + ...       (k steps by 4)
 *   a=k, b=k   C_ij += (dot(a_i, b_j0), ..., dot(a_i, b_j3))            (k steps by 4)
 *   a=m, b=n   C_ij += A[k, m0 + i] * B[k, j]                          (k steps by 1)
 * Why big blocks: llvmpipe runs 8 threads as the lanes of one AVX2 register, and a storage-buffer
 * load is a loop over those lanes with a bounds check each (Mesa 22's gallivm), about 50 times the
 * cost of an 8-wide fma; a vec4 load amortises that loop over 4 floats. So what counts is fmas per
 * loaded float, tm * 4 * tnv / (tm + 4 * tnv) per k: 2 for 4 x 1, 8 for 16 x 4. Spilling the
 * accumulators to the stack costs far less than the loads saved (measured: 16 x 4 is the fastest).
 * Lanes: llvmpipe's 8 lanes are 8 consecutive threads of the 8 x 8 workgroup, which take 8
 * consecutive column blocks, or with `mLanes` 8 consecutive row blocks. A product of few column
 * blocks (N = 96 in 32-column blocks: 3 of 8 lanes busy) wants the second: 800 x 96 x 96 (A B^T)
 * 4.9 -> 3.3 ms with the 32 x 32 block.
 * Requires (checked by the caller): every contiguous dim and every other stride and offset a
 * multiple of 4, N a multiple of 4 (C is stored as vec4), and tm a multiple of 4 when a=m.
 * Rows and vec4 columns past the edge are clamped on load and skipped on store.
 */
function matmulVec4Source({ a, b }: Vec4Layout, { tm, tnv, splitK = 1, mLanes }: Vec4Block): string {
  const I = [...Array(tm).keys()], J = [...Array(tnv).keys()], Q = [0, 1, 2, 3];
  const IJ = I.flatMap((i) => J.map((j) => `${i}_${j}`));
  const kStep = a === "k" ? 4 : 1, [mLane, nLane] = mLanes ? ["x", "y"] : ["y", "x"];
  const loadsA = a === "k"
    ? I.map((i) => `    let a${i} = A[(ar${i} + k) / 4u];`)
    : I.filter((i) => i % 4 === 0).map((i) =>
      `    let a${i / 4}v = A[(aBase + k * sak + min(m0 + ${i}u, M - 4u)) / 4u];`
    );
  const loadsB = b === "n"
    ? Q.slice(0, kStep).flatMap((q) => [
      `    let bk${q} = (bBase + (k + ${q}u) * sbk) / 4u;`,
      ...J.map((j) => `    let b${q}_${j} = B[bk${q} + bc${j}];`),
    ])
    : J.flatMap((j) =>
      Q.map((q) => `    let b${j}_${q} = B[(bBase + (4u * bc${j} + ${q}u) * sbn + k) / 4u];`)
    );
  const update = (i: number, j: number) => {
    const c = `c${i}_${j}`;
    if (a === "m") return `    ${c} = fma(vec4<f32>(a${Math.floor(i / 4)}v[${i % 4}]), b0_${j}, ${c});`;
    if (b === "n") {
      return `    ${c} = ${c} + a${i}.x * b0_${j} + a${i}.y * b1_${j} + a${i}.z * b2_${j} + a${i}.w * b3_${j};`;
    }
    return `    ${c} = ${c} + vec4<f32>(${Q.map((q) => `dot(a${i}, b${j}_${q})`).join(", ")});`;
  };
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
${VIEW_OFFSET}
@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = param(1); let N4 = param(2) / 4u; let K = param(3);
${
    splitK === 1
      ? `  let bt = wid.z; let k0 = 0u; let k1 = K; let store = bt;`
      : `  let bt = wid.z / ${splitK}u; let s = wid.z % ${splitK}u;
  let kc = (K + ${splitK * kStep - 1}u) / ${splitK * kStep}u * ${kStep}u;
  let k0 = s * kc; let k1 = min(K, k0 + kc);
  let store = s * param(0) + bt; // partial sums [S, batch, M, N]`
  }
  // workgroups step through M first so B's columns stay in cache (see kernels/gemm.ts)
  let m0 = (wid.x * 8u + lid.${mLane}) * ${tm}u; let n4 = (wid.y * 8u + lid.${nLane}) * ${tnv}u;
  if (m0 >= M || n4 >= N4) { return; }
  let aBase = view_offset(bt, 4u, 13u); let bBase = view_offset(bt, 4u, 24u);
  let sam = param(22); let sak = param(23); let sbk = param(33); let sbn = param(34);
${a === "k" ? I.map((i) => `  let ar${i} = aBase + min(m0 + ${i}u, M - 1u) * sam;`).join("\n") : ""}
${J.map((j) => `  let bc${j} = min(n4 + ${j}u, N4 - 1u);`).join("\n")}
${IJ.map((c) => `  var c${c} = vec4<f32>(0.0);`).join("\n")}
  for (var k = k0; k < k1; k = k + ${kStep}u) {
${loadsA.join("\n")}
${loadsB.join("\n")}
${I.flatMap((i) => J.map((j) => update(i, j))).join("\n")}
  }
${
    I.flatMap((i) =>
      J.map((j) =>
        `  if (m0 + ${i}u < M && n4 + ${j}u < N4) { out[(store * M + m0 + ${i}u) * N4 + n4 + ${j}u] = c${i}_${j}; }`
      )
    ).join("\n")
  }
}`;
}

export const matmulVec4WGSL = memoWGSL(matmulVec4Source);

/** Workgroups of the vec4 kernel: 8 x 8 threads, each a tm x 4 tnv block; z runs over batch x splits. */
export const matmulVec4Grid = (
  nb: number,
  M: number,
  N: number,
  { tm, tnv, splitK = 1 }: Vec4Block,
): [number, number, number] => [
  Math.ceil(M / (tm * 8)),
  Math.ceil(N / (32 * tnv)),
  nb * splitK,
];
