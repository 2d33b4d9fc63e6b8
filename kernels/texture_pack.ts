// Packs a strided operand into an rgba32float texture, for the kernels that read their operands as
// texels (kernels/matmul_texture.ts, kernels/conv2d_rows.ts): on llvmpipe a texel fetch is a
// vectorised gather while a storage-buffer load loops over the SIMD lanes, 7-10x the floats per
// second (bench/RESULTS.md step 56). The pack itself reads each element once from storage.
//
// The operand is [batch, rows, cols] (batch through a strided view, rows and cols through one stride
// each). Batch b occupies a block of R texel rows and W texels, the blocks P to a band:
//   texel ((b % P) W + c, (b / P) R + r) = x[b, r - padR, 4c - padC .. 4c + 3 - padC]
// with zeros wherever the row or column falls outside the operand: a padded conv input needs no
// bounds checks in the kernel that reads it, and a matmul's k runs to a multiple of 4 over zeros.
// Bands keep a tall stack of small blocks (a conv input's N * C planes) within the texture size
// limit. One thread per texel.
//
// The vec4 form (`aligned`) reads each texel as one vec4 where the operand's rows are whole,
// aligned vec4s (column stride 1; cols, padC, the offset and the other strides multiples of 4):
// one vector load where the scalar form makes four.
//
// params: [batches, rows, cols, R, W, padR, padC, P, batch shape(9) at 8, batch view(9) at 17,
//          stride r at 26, stride c at 27]

import { MAIN, memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";

export const packTextureWGSL = memoWGSL((aligned: boolean = false) => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<${aligned ? "vec4<f32>" : "f32"}>;
@group(0) @binding(2) var tex: texture_storage_2d<rgba32float, write>;
${VIEW_OFFSET}
${MAIN}
  let rows = param(1); let cols = param(2); let R = param(3); let W = param(4);
  let padR = param(5); let padC = param(6); let P = param(7);
  if (i >= param(0) * R * W) { return; }
  let c = i % W; let r = (i / W) % R; let b = i / (W * R);
  let src = r - padR; // wraps past rows when r < padR
  var v = vec4<f32>(0.0);
  if (src < rows) {
    let base = view_offset(b, 8u, 17u) + src * param(26);
${
  aligned
    ? `    let col = 4u * c - padC;
    if (col < cols) { v = x[(base + col) / 4u]; }`
    : `    for (var q = 0u; q < 4u; q = q + 1u) {
      let col = 4u * c + q - padC;
      if (col < cols) { v[q] = x[base + col * param(27)]; }
    }`
}
  }
  textureStore(tex, vec2<u32>((b % P) * W + c, (b / P) * R + r), v);
}`);
