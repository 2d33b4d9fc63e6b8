// BatchNorm over NCHW in four kernels (M = N * H * W values per channel):
//
//   stats      one workgroup per channel: mean and 1/sqrt(var + eps) (biased variance), by a
//              strided pass and a tree reduction in workgroup memory; two passes over the
//              channel (mean first) so the variance does not cancel catastrophically
//   normalize  one thread per element: y = (x - mean[c]) * rstd[c] * w[c] + b[c]
//              (eval mode passes the running statistics as mean / rstd)
//   gradsums   one workgroup per channel: sum(dy) and sum(dy * xhat) -> db and dw
//   grad       one thread per element: dx = rstd w (dy - sum(dy) / M - xhat sum(dy xhat) / M)
//   running    one thread per channel, training only: the running mean and (unbiased) variance
//              move toward the batch's, in place
//
// params: [N, C, HW, eps bits]; per-channel vectors are [C] tensors (stats [2, C]: mean, rstd).

import { MAIN, PARAMS } from "./common.ts";

const PER_CHANNEL = /* wgsl */ `
var<workgroup> red: array<f32, 64>;
fn reduce(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
// The j-th of the channel's M values: batch j / HW, position j % HW.
fn at(c: u32, j: u32) -> u32 { let HW = params[2]; return ((j / HW) * params[1] + c) * HW + j % HW; }`;

const CHANNEL_MAIN = /* wgsl */ `@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let c = wid.x; let lid = lid3.x;
  let M = params[0] * params[2];`;

export const bnStatsWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
${PER_CHANNEL}
${CHANNEL_MAIN}
  var s = 0.0;
  for (var j = lid; j < M; j += 64u) { s += x[at(c, j)]; }
  let mean = reduce(s, lid) / f32(M);
  var v = 0.0;
  for (var j = lid; j < M; j += 64u) { let d = x[at(c, j)] - mean; v += d * d; }
  let rstd = inverseSqrt(reduce(v, lid) / f32(M) + bitcast<f32>(params[3]));
  if (lid == 0u) { stats[c] = mean; stats[params[1] + c] = rstd; }
}`;

export const bnNormalizeWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
${MAIN}
  let C = params[1]; let HW = params[2];
  if (i >= params[0] * C * HW) { return; }
  let c = (i / HW) % C;
  y[i] = (x[i] - stats[c]) * stats[C + c] * w[c] + b[c];
}`;

export const bnGradSumsWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> sums: array<f32>;
${PER_CHANNEL}
${CHANNEL_MAIN}
  let mean = stats[c]; let rstd = stats[params[1] + c];
  var s = 0.0; var sx = 0.0;
  for (var j = lid; j < M; j += 64u) { let k = at(c, j); s += dy[k]; sx += dy[k] * (x[k] - mean) * rstd; }
  s = reduce(s, lid);
  sx = reduce(sx, lid);
  if (lid == 0u) { sums[c] = s; sums[params[1] + c] = sx; }
}`;

export const bnGradWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> sums: array<f32>;
@group(0) @binding(5) var<storage, read> w: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
${MAIN}
  let C = params[1]; let HW = params[2];
  if (i >= params[0] * C * HW) { return; }
  let c = (i / HW) % C;
  let M = f32(params[0] * HW);
  let rstd = stats[C + c];
  let xhat = (x[i] - stats[c]) * rstd;
  dx[i] = rstd * w[c] * (dy[i] - sums[c] / M - xhat * sums[C + c] / M);
}`;

/** params: [C, momentum, eps, M / (M - 1) (f32 bits)]; var = 1 / rstd^2 - eps, unbiased. */
export const bnRunningWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> variance: array<f32>;
${MAIN}
  let C = params[0];
  if (i >= C) { return; }
  let momentum = bitcast<f32>(params[1]); let eps = bitcast<f32>(params[2]);
  let rstd = stats[C + i];
  let unbiased = (1.0 / (rstd * rstd) - eps) * bitcast<f32>(params[3]);
  mean[i] = mix(mean[i], stats[i], momentum);
  variance[i] = mix(variance[i], unbiased, momentum);
}`;
