// softmax and logSoftmax along one axis, and layerNorm over the trailing dims: row kernels for the
// forward; softmax's closed-form gradients are composed from other ops, layerNorm's input gradient
// has a row kernel of its own (the weight and bias gradients are column sums).

import { f32Bits } from "../../kernels/common.ts";
import {
  affineGradWGSL,
  normalizeGradWGSL,
  normalizeWGSL,
  rowThreads,
  softmaxWGSL,
} from "../../kernels/rows.ts";
import { empty, ones, zeros } from "../create.ts";
import { normAxis, numel, type Shape } from "../shape.ts";
import { gpu } from "../storage.ts";
import { runVariant } from "../webgpu/variants.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { exp, mul, sub } from "./elementwise.ts";
import { contiguous, dense, denseBinding, denseHost, packed, transpose } from "./movement.ts";
import { sum } from "./reduce.ts";
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
    runVariant("softmax", { M: rows, N: n, K: 1 }, () => true, ({ rowGroup = false }) => ({
      name: `softmax_${rowGroup ? "group" : "thread"}`,
      code: softmaxWGSL(log, rowGroup),
      params: [rows, n, x.offset],
      reads: [x.storage.binding],
      writes: [out.storage.binding],
      threads: rowThreads(rows, rowGroup),
    }));
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
  const n = numel(normalizedShape), rows = x.size / Math.max(n, 1), o = { device: x.device, dtype: x.dtype };
  const c = rowsOf(x);
  const w = weight ? noGrad(() => dense(weight)) : ones([n], o),
    b = bias ? noGrad(() => dense(bias)) : zeros([n], o);
  const y = empty(x.shape, o), xhat = empty(x.shape, o), stats = empty([rows, 2], o);
  if (x.device === "cpu") {
    const xs = c.storage.host!.subarray(c.offset), W = denseHost(w), B = denseHost(b);
    const Y = y.storage.host!, H = xhat.storage.host!, st = stats.storage.host!;
    for (let r = 0; r < rows; r++) {
      let m = 0, v = 0;
      for (let j = 0; j < n; j++) m += xs[r * n + j];
      m /= n;
      for (let j = 0; j < n; j++) v += (xs[r * n + j] - m) ** 2;
      const rstd = 1 / Math.sqrt(v / n + eps);
      for (let j = 0; j < n; j++) {
        H[r * n + j] = (xs[r * n + j] - m) * rstd;
        Y[r * n + j] = H[r * n + j] * W[j] + B[j];
      }
      st[2 * r] = m, st[2 * r + 1] = rstd;
    }
  } else {
    runVariant("layerNorm", { M: rows, N: n, K: 1 }, () => true, ({ rowGroup = false }) => ({
      name: `normalize_${rowGroup ? "group" : "thread"}`,
      code: normalizeWGSL(rowGroup),
      params: [rows, n, f32Bits(eps), c.offset],
      reads: [c.storage.binding, denseBinding(w), denseBinding(b)],
      writes: [y, xhat, stats].map((t) => t.storage.binding),
      threads: rowThreads(rows, rowGroup),
    }));
  }
  if (c !== x) c.dispose();
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  // dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)) with gw = g * w; dw = sum g * xhat; db = sum g
  return fromOp("layerNorm", y, inputs, (g) => {
    const gc = packed(g), dx = empty(x.shape, o);
    if (x.device === "cpu") {
      const G = gc.storage.host!, H = xhat.storage.host!, W = denseHost(w), st = stats.storage.host!;
      const D = dx.storage.host!;
      for (let r = 0; r < rows; r++) {
        let m1 = 0, m2 = 0;
        for (let j = 0; j < n; j++) m1 += G[r * n + j] * W[j], m2 += G[r * n + j] * W[j] * H[r * n + j];
        m1 /= n, m2 /= n;
        for (let j = 0; j < n; j++) {
          D[r * n + j] = st[2 * r + 1] * (G[r * n + j] * W[j] - m1 - H[r * n + j] * m2);
        }
      }
    } else {
      runVariant("layerNorm_grad", { M: rows, N: n, K: 1 }, () => true, ({ rowGroup = false }) => ({
        name: `normalize_grad_${rowGroup ? "group" : "thread"}`,
        code: normalizeGradWGSL(rowGroup),
        params: [rows, n],
        reads: [gc, xhat, stats, w].map(denseBinding),
        writes: [dx.storage.binding],
        threads: rowThreads(rows, rowGroup),
      }));
    }
    const grads: (Tensor | null)[] = [dx];
    if (weight?.requiresGrad || bias?.requiresGrad) {
      const sums = affineGrads(gc, xhat, rows, n); // [dw | db]
      if (weight) grads.push(weight.requiresGrad ? sums.view(weight.shape, undefined, 0) : null);
      if (bias) grads.push(bias.requiresGrad ? sums.view(bias.shape, undefined, n) : null);
      sums.dispose(); // the views co-own it
    }
    return grads;
  });
}

/** [2 n]: sum over rows of g * xhat (a norm's weight gradient), then of g (its bias gradient). */
function affineGrads(g: Tensor, xhat: Tensor, rows: number, n: number): Tensor {
  const out = (g.device === "cpu" ? zeros : empty)([2 * n], { device: g.device, dtype: g.dtype });
  if (g.device === "cpu") {
    const G = denseHost(g), H = denseHost(xhat), O = out.storage.host!;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < n; j++) O[j] += G[r * n + j] * H[r * n + j], O[n + j] += G[r * n + j];
    }
  } else {
    gpu().run({
      name: "affine_grad",
      code: affineGradWGSL,
      params: [rows, n],
      reads: [denseBinding(g), denseBinding(xhat)],
      writes: [out.storage.binding],
      threads: n,
    });
  }
  return out;
}
