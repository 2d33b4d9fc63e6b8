// Row kernels over the last dim of a contiguous [rows, n] tensor, one thread per row.
// Tiling: none yet (a sequential pass per row); issue P2 gives long rows a workgroup each.
//
// softmax / log_softmax   params: [rows, n, offset]         out[r, :] = softmax(x[r, :]) (or its log)
// normalize               params: [rows, n, eps bits, offset] out[r, :] = (x - mean) / sqrt(var + eps),
//                                                      stats[r] = (mean, 1 / sqrt(var + eps))

import { MAIN, PARAMS } from "./common.ts";

const ROWS = /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;`;

export const softmaxWGSL = (log: boolean) => /* wgsl */ `
${ROWS}
${MAIN}
  if (i >= params[0]) { return; }
  let n = params[1];
  let row = params[2] + i * n;
  let orow = i * n;
  var m = bitcast<f32>(0xff800000u);
  for (var j = 0u; j < n; j = j + 1u) { m = max(m, x[row + j]); }
  var s = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { s = s + exp(x[row + j] - m); }
  ${
  log
    ? "let lse = m + log(s);\n  for (var j = 0u; j < n; j = j + 1u) { out[orow + j] = x[row + j] - lse; }"
    : "for (var j = 0u; j < n; j = j + 1u) { out[orow + j] = exp(x[row + j] - m) / s; }"
}
}`;

export const normalizeWGSL = () => /* wgsl */ `
${ROWS}
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
${MAIN}
  if (i >= params[0]) { return; }
  let n = params[1];
  let row = params[3] + i * n;
  var mean = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { mean = mean + x[row + j]; }
  mean = mean / f32(n);
  var v = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { let d = x[row + j] - mean; v = v + d * d; }
  let rstd = inverseSqrt(v / f32(n) + bitcast<f32>(params[2]));
  for (var j = 0u; j < n; j = j + 1u) { out[i * n + j] = (x[row + j] - mean) * rstd; }
  stats[2u * i] = mean;
  stats[2u * i + 1u] = rstd;
}`;
