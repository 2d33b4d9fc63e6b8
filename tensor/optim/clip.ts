// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: every gradient is scaled by
// min(1, maxNorm / (norm + 1e-6)) where norm is the L2 norm of all gradients together. The norm
// stays on the device, so clipping costs no read-back.

import { add, copyInto, div, minimum, mul, sqrt } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { type Tensor, tidy } from "../tensor.ts";

/** Returns the total norm before clipping (a 0-d tensor the caller owns). */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) throw new Error("clipGradNorm: no parameter has a gradient");
  return tidy(() => {
    const norm = sqrt(grads.map((g) => sum(mul(g, g))).reduce((a, b) => add(a, b)));
    const coef = minimum(div(maxNorm, add(norm, 1e-6)), 1);
    for (const g of grads) copyInto(g, mul(g, coef));
    return norm;
  }).keep();
}
