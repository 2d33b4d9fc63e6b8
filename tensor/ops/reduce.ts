// Reductions over any set of axes (keepdims optional), and the broadcast-undoing sumTo that every
// broadcasting op's gradient uses.

import { shapeWords, viewWords } from "../../kernels/common.ts";
import { type ReduceOp, reduceWGSL } from "../../kernels/reduce.ts";
import { empty } from "../create.ts";
import { normAxes, numel, type Shape } from "../shape.ts";
import { gpu } from "../storage.ts";
import { forEachOffset } from "../strided.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { add, binary, div, exp, log, mul, sub } from "./elementwise.ts";
import { expand, reshape } from "./movement.ts";
import { register } from "./registry.ts";

type Axes = number | readonly number[];

/**
 * The raw kernel: reduces `axes` of x to size 1 (keepdims shape), into a new tensor or into the
 * contiguous view `into`. No autograd.
 */
export function reduceKernel(op: ReduceOp, x: Tensor, axes: number[], into?: Tensor): Tensor {
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = into ?? empty(outShape, { device: x.device, dtype: x.dtype });
  if (into && (into.size !== numel(outShape) || !into.isContiguous)) {
    throw new Error(`internal: reduce into a contiguous ${numel(outShape)}-element view`);
  }
  const kept = { strides: x.strides.map((s, i) => (axes.includes(i) ? 0 : s)), offset: x.offset };
  // The reduced dims are walked largest stride first, whatever their order in x: a permuted view
  // (attention's token-major output seen as [B, H, T, D]) then reduces as the one run it is.
  const walk = [...axes].sort((a, b) => x.strides[b] - x.strides[a]);
  const redShape = walk.map((a) => x.shape[a]), red = { strides: walk.map((a) => x.strides[a]), offset: 0 };
  const nRed = numel(redShape), run = strideRun(redShape, red.strides);
  if (x.device === "cpu") {
    const xs = x.storage.host!, o = out.storage.host!;
    const f = op === "sum"
      ? (a: number, b: number) => a + b
      : op === "sumsq"
      ? (a: number, b: number) => a + b * b
      : op === "max"
      ? Math.max
      : Math.min;
    const init = op === "sum" || op === "sumsq" ? 0 : op === "max" ? -Infinity : Infinity;
    forEachOffset(outShape, [kept], (i, [base]) => {
      let acc = init;
      forEachOffset(redShape, [red], (_, [r]) => acc = f(acc, xs[base + r]));
      o[out.offset + i] = acc;
    });
  } else {
    // Few outputs over long reductions: split each into parts, then reduce the partials.
    const parts = out.size < 2048 && nRed >= 512 ? Math.min(256, Math.ceil(nRed / 256)) : 1;
    const chunk = Math.ceil(nRed / parts);
    const dst = parts > 1 ? empty([out.size, parts], { device: x.device, dtype: x.dtype }) : out;
    gpu().run({
      name: `reduce_${op}`,
      code: reduceWGSL(op, run !== null),
      params: [
        out.size,
        ...shapeWords(outShape),
        ...viewWords(kept),
        ...shapeWords(run === null ? redShape : [nRed]),
        ...viewWords(run === null ? red : { strides: [run], offset: 0 }),
        nRed,
        parts,
        chunk,
        dst.offset,
      ],
      reads: [x.storage.binding],
      writes: [dst.storage.binding],
      threads: out.size * parts,
    });
    if (parts > 1) {
      // the partials' reduction writes straight into `out` (a copy would be one more launch)
      const flat = out.view([out.size, 1], [1, 1], out.offset);
      reduceKernel(op === "sumsq" ? "sum" : op, dst, [1], flat);
      for (const t of [dst, flat]) t.dispose();
    }
  }
  return out;
}

/** The stride of the one run the dims (in order) walk, or null when they do not make one. */
function strideRun(shape: Shape, strides: Shape): number | null {
  const dims = shape.map((d, i) => [d, strides[i]]).filter(([d]) => d !== 1);
  if (dims.length === 0) return 1;
  for (let i = 0; i + 1 < dims.length; i++) if (dims[i][1] !== dims[i + 1][1] * dims[i + 1][0]) return null;
  return dims[dims.length - 1][1];
}

const dropAxes = (shape: Shape, axes: number[]) => shape.filter((_, i) => !axes.includes(i));

function reduction(op: ReduceOp, x: Tensor, axes: Axes | undefined, keepdims: boolean): Tensor {
  const ax = normAxes(axes, x.ndim);
  const kept = reduceKernel(op, x, ax);
  let y = kept;
  if (!keepdims) {
    y = kept.view(dropAxes(x.shape, ax));
    kept.dispose(); // the view co-owns the data
  }
  return fromOp(op, y, [x], (g) => {
    const gk = expand(reshape(g, kept.shape), x.shape);
    if (op === "sum") return [gk];
    // max/min: the gradient goes to the elements equal to the result, split among ties.
    const hit = binary("eq", x, expand(reshape(y, kept.shape), x.shape));
    return [div(mul(gk, hit), expand(reduceKernel("sum", hit, ax), x.shape))];
  });
}

register("sum", "mean", "max", "min", "var", "logsumexp");

export const sum = (x: Tensor, axes?: Axes, keepdims = false) => reduction("sum", x, axes, keepdims);
export const max = (x: Tensor, axes?: Axes, keepdims = false) => reduction("max", x, axes, keepdims);
export const min = (x: Tensor, axes?: Axes, keepdims = false) => reduction("min", x, axes, keepdims);

export function mean(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const n = normAxes(axes, x.ndim).reduce((p, a) => p * x.shape[a], 1);
  return div(sum(x, axes, keepdims), n);
}

/** Variance with Bessel's `correction` (1 = unbiased, as torch.var; 0 = population). */
export function variance(x: Tensor, axes?: Axes, keepdims = false, correction = 1): Tensor {
  const n = normAxes(axes, x.ndim).reduce((p, a) => p * x.shape[a], 1);
  const d = sub(x, mean(x, axes, true));
  return div(sum(mul(d, d), axes, keepdims), Math.max(0, n - correction));
}

/** log(sum(exp(x))) without overflow: the max is subtracted first (and is a constant for autograd). */
export function logsumexp(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const m = noGrad(() => max(x, axes, true));
  const s = log(sum(exp(sub(x, m)), axes, true));
  const out = add(s, m);
  return keepdims ? out : reshape(out, dropAxes(x.shape, normAxes(axes, x.ndim)));
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.ndim === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const axes = g.shape.map((_, i) => i).filter((i) =>
    i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)
  );
  return reshape(sum(g, axes, true), shape);
}
