// softmax and logSoftmax along one axis, and layerNorm over the trailing dims: row kernels for the
// forward, closed-form gradients composed from other ops.

import { f32Bits } from "../../kernels/common.ts";
import { normalizeWGSL, softmaxWGSL } from "../../kernels/rows.ts";
import { empty } from "../create.ts";
import { normAxis, numel, type Shape } from "../shape.ts";
import { gpu } from "../storage.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { add, exp, mul, sub } from "./elementwise.ts";
import { contiguous, transpose } from "./movement.ts";
import { mean, sum } from "./reduce.ts";
import { register } from "./registry.ts";

register("softmax", "logSoftmax", "layerNorm");

/** Runs the softmax row kernel on the last dim of contiguous x. */
function softmaxRows(x: Tensor, log: boolean): Tensor {
  const n = x.shape.at(-1)!, rows = x.size / Math.max(n, 1);
  const out = empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const xs = x.storage.host!, o = out.storage.host!, base = x.offset;
    for (let r = 0; r < rows; r++) {
      let m = -Infinity, s = 0;
      for (let j = 0; j < n; j++) m = Math.max(m, xs[base + r * n + j]);
      for (let j = 0; j < n; j++) s += Math.exp(xs[base + r * n + j] - m);
      const lse = m + Math.log(s);
      for (let j = 0; j < n; j++) {
        const v = xs[base + r * n + j];
        o[r * n + j] = log ? v - lse : Math.exp(v - lse);
      }
    }
  } else {
    gpu().run({
      name: "softmax",
      code: softmaxWGSL(log),
      params: [rows, n, x.offset],
      reads: [x.storage.binding],
      writes: [out.storage.binding],
      threads: rows,
    });
  }
  return out;
}

/** Moves `axis` last (if needed), applies fn to contiguous rows, moves it back. */
function alongAxis(x: Tensor, axis: number, fn: (rows: Tensor) => Tensor): Tensor {
  const a = normAxis(axis, x.ndim);
  if (a === x.ndim - 1) return fn(x);
  return transpose(fn(transpose(x, a, -1)), a, -1);
}

function rowsOf(x: Tensor): Tensor {
  return x.isContiguous ? x : noGrad(() => contiguous(x));
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => {
    const c = rowsOf(t), y = softmaxRows(c, false);
    if (c !== t) c.dispose();
    // dx = y * (g - sum(g * y))
    return fromOp("softmax", y, [t], (g) => [mul(y, sub(g, sum(mul(g, y), -1, true)))]);
  });
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, (t) => {
    const c = rowsOf(t), y = softmaxRows(c, true);
    if (c !== t) c.dispose();
    // dx = g - softmax * sum(g)
    return fromOp("logSoftmax", y, [t], (g) => [sub(g, mul(exp(y), sum(g, -1, true)))]);
  });
}

/**
 * Layer normalisation over the trailing dims `normalizedShape` (biased variance, as PyTorch), then
 * the optional elementwise affine `weight` and `bias` of that shape.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: Shape,
  weight?: Tensor,
  bias?: Tensor,
  eps = 1e-5,
): Tensor {
  const k = normalizedShape.length;
  if (k === 0 || x.shape.slice(-k).some((d, i) => d !== normalizedShape[i])) {
    throw new Error(`layerNorm: input [${x.shape}] does not end in [${normalizedShape}]`);
  }
  const n = numel(normalizedShape), rows = x.size / Math.max(n, 1);
  const c = rowsOf(x);
  const xhat = empty(x.shape, { device: x.device, dtype: x.dtype });
  const stats = empty([rows, 2], { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const xs = c.storage.host!.subarray(c.offset), o = xhat.storage.host!, st = stats.storage.host!;
    for (let r = 0; r < rows; r++) {
      let m = 0, v = 0;
      for (let j = 0; j < n; j++) m += xs[r * n + j];
      m /= n;
      for (let j = 0; j < n; j++) v += (xs[r * n + j] - m) ** 2;
      const rstd = 1 / Math.sqrt(v / n + eps);
      for (let j = 0; j < n; j++) o[r * n + j] = (xs[r * n + j] - m) * rstd;
      st[2 * r] = m, st[2 * r + 1] = rstd;
    }
  } else {
    gpu().run({
      name: "normalize",
      code: normalizeWGSL(),
      params: [rows, n, f32Bits(eps), c.offset],
      reads: [c.storage.binding],
      writes: [xhat.storage.binding, stats.storage.binding],
      threads: rows,
    });
  }
  if (c !== x) c.dispose();
  const axes = normalizedShape.map((_, i) => x.ndim - k + i);
  const rstd = stats.view(
    [...x.shape.slice(0, -k), ...normalizedShape.map(() => 1)],
    rstdStrides(x.shape, k),
    1,
  );
  stats.dispose();
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) over the normalised dims
  const normed = fromOp("layerNorm", xhat, [x], (g) => [
    mul(rstd, sub(sub(g, mean(g, axes, true)), mul(xhat, mean(mul(g, xhat), axes, true)))),
  ]);
  const scaled = weight ? mul(normed, weight) : normed;
  return bias ? add(scaled, bias) : scaled;
}

/** Strides that read column 1 (rstd) of the [rows, 2] stats as [...batch, 1 x k]. */
function rstdStrides(shape: Shape, k: number): number[] {
  const batch = shape.slice(0, -k);
  const s = new Array<number>(batch.length + k).fill(0);
  let acc = 2;
  for (let i = batch.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= batch[i];
  }
  return s;
}
