// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_: every gradient is scaled by
// min(1, maxNorm / (norm + 1e-6)) where norm is the L2 norm of all gradients together. Everything
// stays on the device (no read-back), and costs one reduction per gradient plus a few scalar ops.

import { empty } from "../create.ts";
import { add, copyInto, div, minimum, mul, sqrt } from "../ops/elementwise.ts";
import { reduceKernel, sum } from "../ops/reduce.ts";
import { type Tensor, tidy } from "../tensor.ts";

/**
 * The L2 norm of all gradients together, and the clipping factor min(1, maxNorm / (norm + 1e-6)),
 * as 0-d tensors the caller owns. Pass `scale` to `optimizer.step({ gradScale })` to clip inside the
 * update instead of rewriting every gradient.
 */
export function gradNorm(params: Tensor[], maxNorm: number): { norm: Tensor; scale: Tensor } {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
  if (grads.length === 0) throw new Error("clipGradNorm: no parameter has a gradient");
  const out = tidy(() => {
    const squares = empty([grads.length], { device: grads[0].device, dtype: grads[0].dtype });
    grads.forEach((g, i) =>
      reduceKernel("sumsq", g, [...g.shape.keys()], squares.view([1], [1], i)).dispose()
    );
    return clipFactor(squares, maxNorm);
  });
  return { norm: out.norm.keep(), scale: out.scale.keep() };
}

/** From sums of squares of the gradients' parts: their norm, and min(1, maxNorm / (norm + 1e-6)). */
export function clipFactor(squares: Tensor, maxNorm: number): { norm: Tensor; scale: Tensor } {
  const norm = sqrt(sum(squares));
  return { norm, scale: minimum(div(maxNorm, add(norm, 1e-6)), 1) };
}

/** Scales the gradients in place (torch's clip_grad_norm_); returns the norm before clipping. */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const { norm, scale } = gradNorm(params, maxNorm);
  tidy(() => {
    for (const p of params) if (p.grad) copyInto(p.grad, mul(p.grad, scale));
  });
  scale.dispose();
  return norm;
}
