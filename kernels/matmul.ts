// matmul: out[b, m, n] = sum_k A[b, m, k] * B[b, k, n] for strided operands.
//
// params: [batches, M, N, K, batch shape(9), A batch view(9), A stride m, A stride k,
//          B batch view(9), B stride k, B stride n]
// Operands are read through strides, so transposed operands (A^T in the weight gradient, B^T in
// a Linear layer) and broadcast batch dims (stride 0) need no copies. Output is contiguous.
//
// Variants (all exact same arithmetic order per output, so results agree to f32 rounding):
//   naive     one output per thread; the reference and the fallback
//   blocked   the register-blocked GEMM template (kernels/gemm.ts) with TM x TN per thread

import { MAIN, PARAMS, VIEW_OFFSET } from "./common.ts";
import { type GemmConfig, gemmWGSL } from "./gemm.ts";

const BINDINGS = /* wgsl */ `
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b_: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;`;

export const matmulNaiveWGSL = () => /* wgsl */ `
${PARAMS}
${BINDINGS}
${VIEW_OFFSET}
${MAIN}
  let M = params[1]; let N = params[2]; let K = params[3];
  if (i >= params[0] * M * N) { return; }
  let n = i % N;
  let m = (i / N) % M;
  let batch = i / (M * N);
  let a0 = view_offset(batch, 4u, 13u) + m * params[22];
  let b0 = view_offset(batch, 4u, 24u) + n * params[34];
  let sak = params[23]; let sbk = params[33];
  var acc = 0.0;
  for (var k = 0u; k < K; k = k + 1u) {
    acc = fma(a[a0 + k * sak], b_[b0 + k * sbk], acc);
  }
  out[i] = acc;
}`;

export const matmulBlockedWGSL = (cfg: GemmConfig) =>
  gemmWGSL({
    decls: BINDINGS + VIEW_OFFSET,
    setup: `  let aBase = view_offset(b, 4u, 13u); let bBase = view_offset(b, 4u, 24u);
  let sam = params[22]; let sak = params[23]; let sbk = params[33]; let sbn = params[34];
${[...Array(cfg.tm).keys()].map((i) => `  let ar${i} = aBase + m_${i} * sam;`).join("\n")}
${[...Array(cfg.tn).keys()].map((j) => `  let bc${j} = bBase + n_${j} * sbn;`).join("\n")}`,
    perK: "    let ak = k * sak; let bk = k * sbk;",
    loadA: (i) => `a[ar${i} + ak]`,
    loadB: (j) => `b_[bc${j} + bk]`,
    store: (i, j, v) => `out[(b * M + m0 + ${i}u) * N + n0 + ${j}u] = ${v};`,
  }, cfg);

/** Which dim of an operand is contiguous: A is [M, K] ("k": row-major, "m": transposed), B is [K, N]. */
export type Vec4Layout = { a: "k" | "m"; b: "n" | "k" };

/**
 * vec4 variant for aligned operands: loads 4 consecutive floats at once along each operand's
 * contiguous dim. Each thread owns `tm` rows x 4 columns of C (one vec4 accumulator per row).
 *   a=k, b=n   C_i += a_i.x * B_k + a_i.y * B_k+1 + ...      (k steps by 4)
 *   a=k, b=k   C_i += (dot(a_i, b_0), ..., dot(a_i, b_3))     (k steps by 4)
 *   a=m, b=n   C_i += a[i] * B_k, a = A[m0..m0+3, k]          (k steps by 1)
 * Requires (checked by the caller): every contiguous dim and every other stride and offset a
 * multiple of 4, and N a multiple of 4 (C is stored as vec4).
 */
export function matmulVec4WGSL({ a, b }: Vec4Layout, tm: number): string {
  const I = [...Array(tm).keys()], J = [0, 1, 2, 3];
  const kStep = a === "k" ? 4 : 1;
  const loadsA = a === "k"
    ? I.map((i) => `    let a${i} = A[(ar${i} + k) / 4u];`)
    : I.filter((i) => i % 4 === 0).map((i) => `    let a${i / 4}v = A[(aBase + k * sak + m0 + ${i}u) / 4u];`);
  const loadsB = b === "n"
    ? J.slice(0, kStep).map((kk) => `    let b${kk} = B[(bBase + (k + ${kk}u) * sbk + n0) / 4u];`)
    : J.map((j) => `    let b${j} = B[(bc${j} + k) / 4u];`);
  const update = (i: number) => {
    if (a === "m") return `    c${i} = fma(vec4<f32>(a${Math.floor(i / 4)}v[${i % 4}]), b0, c${i});`;
    if (b === "n") return `    c${i} = c${i} + a${i}.x * b0 + a${i}.y * b1 + a${i}.z * b2 + a${i}.w * b3;`;
    return `    c${i} = c${i} + vec4<f32>(dot(a${i}, b0), dot(a${i}, b1), dot(a${i}, b2), dot(a${i}, b3));`;
  };
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
${VIEW_OFFSET}
@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = params[1]; let N = params[2]; let K = params[3];
  let bt = wid.z;
  // workgroups step through M first so B's columns stay in cache (see kernels/gemm.ts)
  let m0 = (wid.x * 8u + lid.y) * ${tm}u; let n0 = (wid.y * 8u + lid.x) * 4u;
  if (m0 >= M || n0 >= N) { return; }
  let aBase = view_offset(bt, 4u, 13u); let bBase = view_offset(bt, 4u, 24u);
  let sam = params[22]; let sak = params[23]; let sbk = params[33]; let sbn = params[34];
${I.map((i) => `  let ar${i} = aBase + min(m0 + ${i}u, M - 1u) * sam;`).join("\n")}
${J.map((j) => `  let bc${j} = bBase + (n0 + ${j}u) * sbn;`).join("\n")}
${I.map((i) => `  var c${i} = vec4<f32>(0.0);`).join("\n")}
  for (var k = 0u; k < K; k = k + ${kStep}u) {
${loadsA.join("\n")}
${loadsB.join("\n")}
${I.map(update).join("\n")}
  }
${I.map((i) => `  if (m0 + ${i}u < M) { out[((bt * M + m0 + ${i}u) * N + n0) / 4u] = c${i}; }`).join("\n")}
}`;
}
