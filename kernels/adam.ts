// Adam / AdamW over a flat buffer of parameters (tensor/optim/flat.ts): one launch updates every
// parameter in the buffer, one thread per 4 elements (vec4 loads: on a CPU adapter the loads are
// the cost, and the parameters below are read once for 4 elements):
//   g  = grad * scale[0]               (scale: global-norm clipping, computed on the GPU)
//   g += wd * p                         (Adam: L2 penalty through the gradient)
//   m  = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
//   p *= 1 - lr wd                      (AdamW: decoupled decay)
//   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - beta^t
// The buffer holds parameters of several groups (their own lr and weight decay), and a parameter
// without a gradient this step must not move: the launch carries a table of segments [start, end)
// with their lr and wd, and elements outside every segment are left alone. Segments are few (one
// per group when every parameter has a gradient), so each thread scans them. Parameters start at
// multiples of 64 elements, so 4 consecutive elements never belong to two of them; the ones past a
// parameter's end are padding with zero gradient, moments and value, which the update keeps 0.
// params: [n / 4, decoupled, segments, b1, b2, eps, bc1, bc2 (f32 bits), scale offset,
//          then per segment: start, end, lr, wd (f32 bits)]

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export const ADAM_HEADER_WORDS = 9;

export const adamWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;
fn f(k: u32) -> f32 { return bitcast<f32>(param(k)); }
${MAIN}
  if (i >= param(0)) { return; }
  let e = 4u * i;
  var seg = ${ADAM_HEADER_WORDS}u;
  let end = ${ADAM_HEADER_WORDS}u + 4u * param(2);
  while (seg < end && !(e >= param(seg) && e < param(seg + 1u))) { seg = seg + 4u; }
  if (seg == end) { return; }
  let lr = f(seg + 2u); let wd = f(seg + 3u);
  let b1 = f(3u); let b2 = f(4u); let eps = f(5u);
  let decoupled = param(1) != 0u;
  var pi = p[i];
  var g = grad[i] * scale[param(8)];
  if (!decoupled) { g = g + wd * pi; }
  let mi = b1 * m[i] + (1.0 - b1) * g;
  let vi = b2 * v[i] + (1.0 - b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  if (decoupled) { pi = pi * (1.0 - lr * wd); }
  p[i] = pi - lr * (mi / f(6u)) / (sqrt(vi / f(7u)) + eps);
}`);
