// matmul: out[b, m, n] = sum_k A[b, m, k] * B[b, k, n], one thread per output element.
//
// params: [total, M, N, K, batch shape(9), A batch view(9), A stride m, A stride k,
//          B batch view(9), B stride k, B stride n]
// Both operands are read through strides, so transposed operands (A^T in the weight gradient,
// B^T in the input gradient) and broadcast batch dims (stride 0) need no copies.
// Tiling: none (correctness reference); issue P2 adds the register-blocked and workgroup-tiled
// variants.

import { MAIN, PARAMS, VIEW_OFFSET } from "./common.ts";

export const matmulWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${VIEW_OFFSET}
${MAIN}
  if (i >= params[0]) { return; }
  let M = params[1]; let N = params[2]; let K = params[3];
  let n = i % N;
  let m = (i / N) % M;
  let batch = i / (M * N);
  let a0 = view_offset(batch, 4u, 13u) + m * params[22];
  let b0 = view_offset(batch, 4u, 24u) + n * params[34];
  let sak = params[23]; let sbk = params[33];
  var acc = 0.0;
  for (var k = 0u; k < K; k = k + 1u) {
    acc = acc + a[a0 + k * sak] * b[b0 + k * sbk];
  }
  out[i] = acc;
}`;
