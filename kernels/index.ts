// Kernels that index with an i32 tensor.
//
// gather        out[n, d] = table[idx[n], d]                 params: [N*D, D, V]   one thread per out
// scatter_add   table[idx[n], d] += g[n, d]                 params: [N*D, D, V]   one thread per g
//               (f32 add by compare-and-swap on the bits: WGSL has no float atomics)
// pick          out[n] = x[n, t[n]], 0 where t[n] == ignore  params: [N, C, ignore, x offset]
// pick_grad     dx[n, c] = c == t[n] ? g[n] : 0              params: [N*C, C, ignore]
// index_mask    out[n] = t[n] != ignore                      params: [N, ignore]
// Out-of-range indices read 0 and write nothing; callers check ranges on the host first.

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export const gatherWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let D = param(1);
  let row = idx[i / D];
  out[i] = select(0.0, table[u32(row) * D + i % D], row >= 0 && u32(row) < param(2));
}`);

export const scatterAddWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> table: array<atomic<u32>>;
${MAIN}
  if (i >= param(0)) { return; }
  let D = param(1);
  let row = idx[i / D];
  if (row < 0 || u32(row) >= param(2)) { return; }
  let at = u32(row) * D + i % D;
  var old = atomicLoad(&table[at]);
  loop {
    let r = atomicCompareExchangeWeak(&table[at], old, bitcast<u32>(bitcast<f32>(old) + g[i]));
    if (r.exchanged) { break; }
    old = r.old_value;
  }
}`);

export const pickWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let c = t[i];
  let ok = c != bitcast<i32>(param(2)) && c >= 0 && u32(c) < param(1);
  out[i] = select(0.0, x[param(3) + i * param(1) + u32(max(c, 0))], ok);
}`);

export const pickGradWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let n = i / param(1);
  let c = t[n];
  out[i] = select(0.0, g[n], c != bitcast<i32>(param(2)) && u32(c) == i % param(1));
}`);

export const indexMaskWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> t: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  out[i] = select(0.0, 1.0, t[i] != bitcast<i32>(param(1)));
}`);
