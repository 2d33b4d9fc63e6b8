// BatchNorm over NCHW in four kernels (M = N * H * W values per channel), with an optional epilogue
// y = relu?(bn(x) + residual?) fused in (a ResNet block's tail: no separate add or relu passes, and
// the backward masks dy by y > 0 inside its own kernels instead of launching the relu's):
//
//   stats      one workgroup per channel: mean and 1/sqrt(var + eps) (biased variance), by a
//              strided pass and a tree reduction in workgroup memory; two passes over the
//              channel (mean first) so the variance does not cancel catastrophically
//   normalize  one thread per vector: y = act((x - mean[c]) * rstd[c] * w[c] + b[c] + r)
//              (eval mode passes the running statistics as mean / rstd)
//   gradsums   one workgroup per channel, dz = dy (masked by y > 0 under relu): sum(dz) and
//              sum(dz * xhat) -> db and dw, and the coefficients of dx below
//   grad       one thread per vector: dx = rstd w (dz - sum(dz) / M - xhat sum(dz xhat) / M), and
//              dr = dz for the residual
//   running    one thread per channel, training only: the running mean and (unbiased) variance
//              move toward the batch's, in place
//
// gradsums writes per channel [6, C]: sum(dz), sum(dz xhat), mean, rstd w, sum(dz) / M,
// rstd sum(dz xhat) / M, so that grad reads one coefficient buffer (8 storage buffers is all some
// adapters give a kernel); with constant (running) statistics the last two rows are 0: dx = rstd w dz.
//
// The sizes are compiled in (a network has a handful of BN shapes), so the channel of an element,
// (i / HW) % C, costs multiplies rather than integer divisions, which a CPU adapter scalarises.
// When HW % 4 == 0 every kernel moves vec4s of one channel's plane (V = 4), otherwise scalars.
// params: stats [eps bits]; the others [vectors in x] (bounds). Per-channel vectors are [C]
// tensors (stats [2, C]: mean, rstd).

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export interface BnDims {
  N: number;
  C: number;
  HW: number;
}

/** The fused tail: y = relu?(bn(x) + residual?). */
export interface BnEpilogue {
  residual?: boolean;
  relu?: boolean;
}

/** Values per vector: 4 when a channel's planes split into whole vec4s. */
export const bnWidth = ({ HW }: BnDims) => (HW % 4 === 0 ? 4 : 1);

const header = (g: BnDims) => {
  const V = bnWidth(g);
  return /* wgsl */ `${PARAMS}
alias T = ${V === 4 ? "vec4<f32>" : "f32"};
const N = ${g.N}u; const C = ${g.C}u; const HW = ${g.HW}u;
const Q = ${g.HW / V}u; // vectors per plane
const M = ${g.N * g.HW}.0; // values per channel
fn total(v: T) -> f32 { return ${V === 4 ? "dot(v, vec4<f32>(1.0))" : "v"}; }`;
};

// One workgroup per channel: thread lid visits the channel's vectors j = lid, lid + 64, ...
// (image j / Q, vector j % Q of its plane).
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
fn at(c: u32, j: u32) -> u32 { return ((j / Q) * C + c) * Q + j % Q; }
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
  let c = wid.x; let lid = lid3.x;`;

export const bnStatsWGSL = memoWGSL((g: BnDims) => /* wgsl */ `
${header(g)}
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
${PER_CHANNEL}
  var s = T(0.0);
  for (var j = lid; j < N * Q; j += 64u) { s += x[at(c, j)]; }
  let mean = reduce(total(s), lid) / M;
  var v = T(0.0);
  for (var j = lid; j < N * Q; j += 64u) { let d = x[at(c, j)] - mean; v += d * d; }
  let rstd = inverseSqrt(reduce(total(v), lid) / M + bitcast<f32>(param(0)));
  if (lid == 0u) { stats[c] = mean; stats[C + c] = rstd; }
}`);

export const bnNormalizeWGSL = memoWGSL((g: BnDims, e: BnEpilogue = {}) => /* wgsl */ `
${header(g)}
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;${
  e.residual ? "\n@group(0) @binding(5) var<storage, read> r: array<T>;" : ""
}
@group(0) @binding(${e.residual ? 6 : 5}) var<storage, read_write> y: array<T>;
${MAIN}
  if (i >= param(0)) { return; }
  let c = (i / Q) % C;
  let v = (x[i] - stats[c]) * (stats[C + c] * w[c]) + b[c]${e.residual ? " + r[i]" : ""};
  y[i] = ${e.relu ? "max(v, T(0.0))" : "v"};
}`);

/** dz at element k: dy, or dy where the relu let y through. */
const dz = (relu: boolean | undefined, k: string) =>
  relu ? `select(T(0.0), dy[${k}], y[${k}] > T(0.0))` : `dy[${k}]`;

/** `batch`: the statistics came from this batch (training), so dx has their terms too. */
export const bnGradSumsWGSL = memoWGSL((
  g: BnDims,
  { relu, batch }: { relu?: boolean; batch: boolean },
) => /* wgsl */ `
${header(g)}
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> dy: array<T>;${
  relu ? "\n@group(0) @binding(3) var<storage, read> y: array<T>;" : ""
}
@group(0) @binding(${relu ? 4 : 3}) var<storage, read> stats: array<f32>;
@group(0) @binding(${relu ? 5 : 4}) var<storage, read> w: array<f32>;
@group(0) @binding(${relu ? 6 : 5}) var<storage, read_write> k: array<f32>;
${PER_CHANNEL}
  let mean = stats[c]; let rstd = stats[C + c];
  var s = T(0.0); var sx = T(0.0);
  for (var j = lid; j < N * Q; j += 64u) {
    let o = at(c, j); let d = ${dz(relu, "o")}; s += d; sx += d * (x[o] - mean);
  }
  let sy = reduce(total(s), lid);
  let sxy = reduce(total(sx), lid) * rstd;
  if (lid == 0u) {
    k[c] = sy; k[C + c] = sxy; k[2u * C + c] = mean; k[3u * C + c] = rstd * w[c];
    k[4u * C + c] = ${batch ? "sy / M" : "0.0"}; k[5u * C + c] = ${batch ? "rstd * sxy / M" : "0.0"};
  }
}`);

/** `residual`: also write dr = dz. */
export const bnGradWGSL = memoWGSL((g: BnDims, { relu, residual }: BnEpilogue) => /* wgsl */ `
${header(g)}
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> dy: array<T>;${
  relu ? "\n@group(0) @binding(3) var<storage, read> y: array<T>;" : ""
}
@group(0) @binding(${relu ? 4 : 3}) var<storage, read> k: array<f32>;
@group(0) @binding(${relu ? 5 : 4}) var<storage, read_write> dx: array<T>;${
  residual ? `\n@group(0) @binding(${relu ? 6 : 5}) var<storage, read_write> dr: array<T>;` : ""
}
${MAIN}
  if (i >= param(0)) { return; }
  let c = (i / Q) % C;
  let d = ${dz(relu, "i")};
  dx[i] = k[3u * C + c] * (d - k[4u * C + c] - (x[i] - k[2u * C + c]) * k[5u * C + c]);${
  residual ? "\n  dr[i] = d;" : ""
}
}`);

/**
 * An eval batchnorm after a conv, folded into the conv's epilogue (kernels/epilogue.ts): one thread
 * per channel, scale = w / sqrt(var + eps), shift = b - (mean - conv bias) * scale.
 * params: [C, eps bits].
 */
export const bnFoldWGSL = memoWGSL((convBias: boolean) => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> variance: array<f32>;${
  convBias ? "\n@group(0) @binding(5) var<storage, read> cb: array<f32>;" : ""
}
@group(0) @binding(${convBias ? 6 : 5}) var<storage, read_write> scale: array<f32>;
@group(0) @binding(${convBias ? 7 : 6}) var<storage, read_write> shift: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let s = w[i] * inverseSqrt(variance[i] + bitcast<f32>(param(1)));
  scale[i] = s;
  shift[i] = b[i] - (mean[i]${convBias ? " - cb[i]" : ""}) * s;
}`);

/** params: [C, momentum, eps, M / (M - 1) (f32 bits)]; var = 1 / rstd^2 - eps, unbiased. */
export const bnRunningWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> variance: array<f32>;
${MAIN}
  let C = param(0);
  if (i >= C) { return; }
  let momentum = bitcast<f32>(param(1)); let eps = bitcast<f32>(param(2));
  let rstd = stats[C + i];
  let unbiased = (1.0 / (rstd * rstd) - eps) * bitcast<f32>(param(3));
  mean[i] = mix(mean[i], stats[i], momentum);
  variance[i] = mix(variance[i], unbiased, momentum);
}`);
