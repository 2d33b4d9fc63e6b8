// Fused scaled-dot-product attention, forward and backward, flash-style: the [Tq, Tk] score matrix
// is never stored. One thread owns one query row (forward, dQ) or one key row (dK, dV) and keeps
// a head-sized accumulator in registers; softmax is computed online (running max and sum).
//
//   S = scale * Q K^T (+ masks),  P = softmax_rows(S),  O = P V,  lse_i = log sum_j exp(S_ij)
//   backward, recomputing P from the saved lse:
//     D_i = dO_i . O_i,  dP_ij = dO_i . V_j,  dS_ij = P_ij (dP_ij - D_i)
//     dQ_i = scale * sum_j dS_ij K_j,  dK_j = scale * sum_i dS_ij Q_i,  dV_j = sum_i P_ij dO_i
//
// Layout: every operand is read or written in place as rows of D contiguous floats, row t of head
// bh = b * H + h at  offset + b * sb + h * sh + t * st  (ROW_LAYOUT below): [B, H, T, D] tensors,
// [B, T, H, D] ones (a projection's heads, permuted: no copy before or after), and a KV cache of
// capacity Tmax read by single-query decoding (the same kernel with Tq = 1). Masks: causal (query i
// sees keys j <= i + Tk - Tq, aligned to the end as in decoding) and key padding (mask[b, j] != 0
// hides key j). A query row with no visible key outputs 0.
// Row statistics live in one [BH * Tq, 2] buffer: lse (written by the forward) and D (by the dQ
// pass, which holds dO_i in registers anyway and reads O_i once more; the dK/dV pass, run after it,
// reads them), which keeps every pass within 8 storage buffers, the WebGPU default.
// params: [BH, Tq, Tk, H, scale bits, causal, padded?, then 4 words (offset, sb, sh, st) for each of
//          q, k, v, dO and the pass's output (o, dQ, or dK), then dV's offset from dK's, then O's
//          layout (the dQ pass reads the forward's output)]
// The head size D is a compile-time constant (the accumulators live in registers).

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

/** Where each operand's layout sits in params (see above); the blocked kernels share them. */
export const LAYOUT = { q: 7, k: 11, v: 15, dO: 19, out: 23, dV: 27, o: 28 } as const;

/** Element offset of row t of head bh in the operand whose layout starts at params[L]. */
export const ROW_LAYOUT = /* wgsl */ `
const QL = ${LAYOUT.q}u; const KL = ${LAYOUT.k}u; const VL = ${LAYOUT.v}u; const GL = ${LAYOUT.dO}u; const OL = ${LAYOUT.out}u;
const FL = ${LAYOUT.o}u; // the forward's output O, which the dQ pass reads
fn rowAt(L: u32, bh: u32, t: u32) -> u32 {
  return param(L) + (bh / param(3)) * param(L + 1u) + (bh % param(3)) * param(L + 2u) + t * param(L + 3u);
}`;

const COMMON = (D: number) => /* wgsl */ `
${PARAMS}
const D: u32 = ${D}u;
${ROW_LAYOUT}
fn visible(bh: u32, i: u32, j: u32) -> bool {
  let Tq = param(1); let Tk = param(2);
  if (param(5) != 0u && j + Tq > i + Tk) { return false; }
  if (param(6) != 0u && pad[(bh / param(3)) * Tk + j] != 0.0) { return false; }
  return true;
}`;

/** The forward's bindings (the tiled kernels share them). */
export const FORWARD_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> pad: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;`;

export const attentionWGSL = memoWGSL((D: number) =>
  /* wgsl */ `${FORWARD_IO}
${COMMON(D)}
${MAIN}
  let Tq = param(1); let Tk = param(2);
  if (i >= param(0) * Tq) { return; }
  let bh = i / Tq; let row = i % Tq;
  let scale = bitcast<f32>(param(4));
  var qv: array<f32, ${D}>;
  var acc: array<f32, ${D}>;
  let qr = rowAt(QL, bh, row);
  for (var c = 0u; c < D; c++) { qv[c] = q[qr + c] * scale; acc[c] = 0.0; }
  var m = bitcast<f32>(0xff800000u);
  var l = 0.0;
  // a key row's address is base + j * stride: hoisted, since every param read is a load
  let k0 = rowAt(KL, bh, 0u); let ks = param(KL + 3u); let v0 = rowAt(VL, bh, 0u); let vs = param(VL + 3u);
  for (var j = 0u; j < Tk; j++) {
    if (!visible(bh, row, j)) { continue; }
    let kr = k0 + j * ks; let vr = v0 + j * vs;
    var s = 0.0;
    for (var c = 0u; c < D; c++) { s = fma(qv[c], k[kr + c], s); }
    let mNew = max(m, s);
    let correction = exp(m - mNew);
    let p = exp(s - mNew);
    l = l * correction + p;
    for (var c = 0u; c < D; c++) { acc[c] = fma(p, v[vr + c], acc[c] * correction); }
    m = mNew;
  }
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let orow = rowAt(OL, bh, row);
  for (var c = 0u; c < D; c++) { o[orow + c] = acc[c] * inv; }
  stats[2u * i] = m + log(l);
}`
);

/**
 * The backward passes' bindings (the tiled kernels share them), reads then writes: the dQ pass
 * reads O (for D) where the dK/dV pass reads the statistics, and writes D beside dQ.
 */
export const backwardIO = (dq: boolean) => /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> pad: array<f32>;
${
  dq
    ? `@group(0) @binding(5) var<storage, read> dO: array<f32>;
@group(0) @binding(6) var<storage, read> o: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(0) @binding(8) var<storage, read_write> stats: array<f32>;`
    : `@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;`
}`;

/** Per query row: D_i, then dQ. */
export const attentionGradQWGSL = memoWGSL((D: number) => /* wgsl */ `
${backwardIO(true)}
${COMMON(D)}
${MAIN}
  let Tq = param(1); let Tk = param(2);
  if (i >= param(0) * Tq) { return; }
  let bh = i / Tq; let row = i % Tq;
  let scale = bitcast<f32>(param(4));
  var qv: array<f32, ${D}>;
  var dov: array<f32, ${D}>;
  var acc: array<f32, ${D}>;
  let qr = rowAt(QL, bh, row); let gr = rowAt(GL, bh, row);
  let fr = rowAt(FL, bh, row);
  var di = 0.0;
  for (var c = 0u; c < D; c++) {
    qv[c] = q[qr + c] * scale; dov[c] = dO[gr + c]; acc[c] = 0.0; di = fma(dov[c], o[fr + c], di);
  }
  let li = stats[2u * i]; stats[2u * i + 1u] = di;
  // a key row's address is base + j * stride: hoisted, since every param read is a load
  let k0 = rowAt(KL, bh, 0u); let ks = param(KL + 3u); let v0 = rowAt(VL, bh, 0u); let vs = param(VL + 3u);
  for (var j = 0u; j < Tk; j++) {
    if (!visible(bh, row, j)) { continue; }
    let kr = k0 + j * ks; let vr = v0 + j * vs;
    var s = 0.0; var dp = 0.0;
    for (var c = 0u; c < D; c++) { s = fma(qv[c], k[kr + c], s); dp = fma(dov[c], v[vr + c], dp); }
    let ds = exp(s - li) * (dp - di);
    for (var c = 0u; c < D; c++) { acc[c] = fma(ds, k[kr + c], acc[c]); }
  }
  let orow = rowAt(OL, bh, row);
  for (var c = 0u; c < D; c++) { out[orow + c] = acc[c] * scale; }
}`);

/** Per key row: dK and dV, into one buffer (dV at dK's place + params[27]). */
export const attentionGradKVWGSL = memoWGSL((D: number) => /* wgsl */ `
${backwardIO(false)}
${COMMON(D)}
${MAIN}
  let Tq = param(1); let Tk = param(2);
  if (i >= param(0) * Tk) { return; }
  let bh = i / Tk; let j = i % Tk;
  let scale = bitcast<f32>(param(4));
  let kr = rowAt(KL, bh, j); let vr = rowAt(VL, bh, j);
  var kv: array<f32, ${D}>;
  var vv: array<f32, ${D}>;
  var dk: array<f32, ${D}>;
  var dv: array<f32, ${D}>;
  for (var c = 0u; c < D; c++) { kv[c] = k[kr + c] * scale; vv[c] = v[vr + c]; dk[c] = 0.0; dv[c] = 0.0; }
  let q0 = rowAt(QL, bh, 0u); let qs = param(QL + 3u); let g0 = rowAt(GL, bh, 0u); let gs = param(GL + 3u);
  for (var r = 0u; r < Tq; r++) {
    if (!visible(bh, r, j)) { continue; }
    let qi = q0 + r * qs; let gi = g0 + r * gs;
    var s = 0.0; var dp = 0.0;
    for (var c = 0u; c < D; c++) { s = fma(q[qi + c], kv[c], s); dp = fma(dO[gi + c], vv[c], dp); }
    let p = exp(s - stats[2u * (bh * Tq + r)]);
    let ds = p * (dp - stats[2u * (bh * Tq + r) + 1u]);
    for (var c = 0u; c < D; c++) {
      dv[c] = fma(p, dO[gi + c], dv[c]);
      dk[c] = fma(ds, q[qi + c], dk[c]);
    }
  }
  let at = rowAt(OL, bh, j); let dvAt = param(${LAYOUT.dV}) + at; // read once: stores may alias params
  for (var c = 0u; c < D; c++) { out[at + c] = dk[c] * scale; out[dvAt + c] = dv[c]; }
}`);
