// Row kernels over the last dim of a contiguous [rows, n] tensor, one thread per row.
// Tiling: none yet (a sequential pass per row); issue P2 gives long rows a workgroup each.
//
// softmax / log_softmax   params: [rows, n, offset]         out[r, :] = softmax(x[r, :]) (or its log)
// normalize               params: [rows, n, eps bits, offset] xhat[r, :] = (x - mean) / sqrt(var + eps),
//                                                      out = xhat * w + b, stats[r] = (mean, rstd)
// normalize_grad          params: [rows, n]               dx from dy, xhat, rstd and w (below)

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
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> xhat: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
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
  for (var j = 0u; j < n; j = j + 1u) {
    let h = (x[row + j] - mean) * rstd;
    xhat[i * n + j] = h;
    out[i * n + j] = h * w[j] + b[j];
  }
  stats[2u * i] = mean;
  stats[2u * i + 1u] = rstd;
}`;

/** dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w, per row.  params: [rows, n] */
export const normalizeGradWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> xhat: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
${MAIN}
  if (i >= params[0]) { return; }
  let n = params[1];
  let row = i * n;
  var m1 = 0.0; var m2 = 0.0;
  for (var j = 0u; j < n; j = j + 1u) { let gw = g[row + j] * w[j]; m1 += gw; m2 += gw * xhat[row + j]; }
  m1 = m1 / f32(n); m2 = m2 / f32(n);
  let rstd = stats[2u * i + 1u];
  for (var j = 0u; j < n; j = j + 1u) { dx[row + j] = rstd * (g[row + j] * w[j] - m1 - xhat[row + j] * m2); }
}`;
