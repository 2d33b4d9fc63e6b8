// Fused cross-entropy over rows of logits [N, C] with integer targets, label smoothing e and an
// ignored target value; the log-probabilities are never stored.
//
//   forward, in two forms (both: a max pass, then one pass summing exp(x - max) and x)
//     row per thread     for rows up to ROW_PER_THREAD_MAX classes (the tiny captioner's 160): no
//                        barriers, which a CPU adapter runs as a switch between its threads
//     row per workgroup  64 threads strided over the row, tree reductions in workgroup memory (a
//                        15K vocabulary: enough work per row for a workgroup)
//     lse_n  = log sum_c exp(x_nc)
//     loss_n = lse_n - (1 - e) x_{n,t_n} - e mean_c x_nc        (0 where t_n is ignored)
//   backward (one thread per element)
//     dx_nc  = g_n (exp(x_nc - lse_n) - (1 - e) [c == t_n] - e / C)   (0 where t_n is ignored)
// params: [N, C, ignore (i32 bits), e (f32 bits)]

import { MAIN, memoWGSL, PARAMS, WG_REDUCE } from "./common.ts";

/** Rows up to this many classes take the row-per-thread form. */
export const ROW_PER_THREAD_MAX = 2048;

const FORWARD_BINDINGS = /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<i32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;`;

/** Row n's loss and lse from its max m, its sum of exp(x - m) s and its sum of x total. */
const ROW_RESULT = /* wgsl */ `
    let l = m + log(s);
    let tn = t[n];
    let e = bitcast<f32>(param(3));
    let ok = tn != bitcast<i32>(param(2)) && tn >= 0 && u32(tn) < C;
    let xt = x[row + u32(max(tn, 0))];
    loss[n] = select(0.0, l - (1.0 - e) * xt - e * total / f32(C), ok);
    lse[n] = l;`;

/** One thread per row: dispatched with N threads. */
export const crossEntropyRowWGSL = memoWGSL(() => /* wgsl */ `
${FORWARD_BINDINGS}
${MAIN}
  let C = param(1);
  if (i >= param(0)) { return; }
  let n = i; let row = n * C;
  var m = bitcast<f32>(0xff800000u);
  for (var c = 0u; c < C; c++) { m = max(m, x[row + c]); }
  var s = 0.0; var total = 0.0;
  for (var c = 0u; c < C; c++) { let v = x[row + c]; s += exp(v - m); total += v; }
  {${ROW_RESULT}
  }
}`);

/** One workgroup of 64 per row: dispatched with N workgroups. */
export const crossEntropyWGSL = memoWGSL(() => /* wgsl */ `
${FORWARD_BINDINGS}
${WG_REDUCE}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = wid.x + wid.y * nwg.x;
  let lid = lid3.x;
  let C = param(1);
  if (n >= param(0)) { return; } // uniform per workgroup: barriers stay in uniform control flow
  let row = n * C;
  var m = bitcast<f32>(0xff800000u);
  for (var c = lid; c < C; c += 64u) { m = max(m, x[row + c]); }
  m = wg_reduce(m, lid, true);
  var s = 0.0; var total = 0.0;
  for (var c = lid; c < C; c += 64u) { let v = x[row + c]; s += exp(v - m); total += v; }
  s = wg_reduce(s, lid, false);
  total = wg_reduce(total, lid, false);
  if (lid == 0u) {${ROW_RESULT}
  }
}`);

export const crossEntropyGradWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<i32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
${MAIN}
  let C = param(1);
  if (i >= param(0) * C) { return; }
  let n = i / C; let c = i % C;
  let tn = t[n];
  let e = bitcast<f32>(param(3));
  let hot = select(0.0, 1.0 - e, u32(tn) == c);
  let d = exp(x[i] - lse[n]) - hot - e / f32(C);
  dx[i] = select(0.0, g[n] * d, tn != bitcast<i32>(param(2)));
}`);
