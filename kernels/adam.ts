// Adam / AdamW update in place, one thread per parameter element:
//   g  = grad * scale[0]               (scale: global-norm clipping, computed on the GPU)
//   g += wd * p                         (Adam: L2 penalty through the gradient)
//   m  = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
//   p *= 1 - lr wd                      (AdamW: decoupled decay)
//   p -= lr * (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - beta^t
// params: [n, lr, b1, b2, eps, wd, bc1, bc2 (f32 bits), decoupled, grad offset, scale offset]
// The offsets let a gradient that is a dense slice of a larger buffer (batchnorm's weight and bias
// gradients share one) be read in place.

import { MAIN, PARAMS } from "./common.ts";

export const adamWGSL = () => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> scale: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
fn f(k: u32) -> f32 { return bitcast<f32>(params[k]); }
${MAIN}
  if (i >= params[0]) { return; }
  let lr = f(1u); let b1 = f(2u); let b2 = f(3u); let eps = f(4u); let wd = f(5u);
  var g = grad[params[9] + i] * scale[params[10]];
  if (params[8] == 0u) { g = g + wd * p[i]; }
  let mi = b1 * m[i] + (1.0 - b1) * g;
  let vi = b2 * v[i] + (1.0 - b2) * g * g;
  m[i] = mi;
  v[i] = vi;
  var pi = p[i];
  if (params[8] != 0u) { pi = pi * (1.0 - lr * wd); }
  p[i] = pi - lr * (mi / f(6u)) / (sqrt(vi / f(7u)) + eps);
}`;
