// Shape and layout ops. Views (reshape where the strides allow, permute, expand, slice, squeeze) share
// storage and cost nothing; copies happen only in contiguous, concat and pad.

import { empty, full } from "../create.ts";
import { checkShape, contiguousStrides, normAxis, numel, type Shape } from "../shape.ts";
import type { HostArray } from "../storage.ts";
import { type Binding, BINDING_ALIGN } from "../webgpu/runtime.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { copyInto } from "./elementwise.ts";
import { register } from "./registry.ts";
import { sumTo } from "./reduce.ts";

register("reshape", "permute", "expand", "slice", "pad", "concat", "stack", "contiguous");

/** A row-major copy when `x` is not contiguous already (then `x` itself). */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous) return x;
  const out = copyInto(empty(x.shape, { device: x.device, dtype: x.dtype }), x);
  return fromOp("contiguous", out, [x], (g) => [g]);
}

/** `x` itself when it is row-major from offset 0, else such a copy (for kernels that index densely). No autograd. */
export function packed(x: Tensor): Tensor {
  return x.isContiguous && x.offset === 0
    ? x
    : noGrad(() => copyInto(empty(x.shape, { device: x.device, dtype: x.dtype }), x));
}

/**
 * x as a kernel reads a dense array from its first element: x itself where it is contiguous and
 * starts where a binding may (offset 0, or an aligned offset: parameters in an optimizer's flat
 * buffers), else a packed copy. Bind it with `denseBinding`, read it on the host with `denseHost`.
 */
export function dense(x: Tensor): Tensor {
  return x.isContiguous && (x.device === "cpu" || (x.offset * 4) % BINDING_ALIGN === 0) ? x : packed(x);
}

export function denseBinding(x: Tensor): Binding {
  if (!x.isContiguous) throw new Error("internal: binding a strided view as a dense array");
  return { ...x.storage.binding, offset: x.offset * 4, bytes: x.size * 4 };
}

export function denseHost(x: Tensor): HostArray {
  if (!x.isContiguous) throw new Error("internal: reading a strided view as a dense array");
  return x.storage.host!.subarray(x.offset, x.offset + x.size);
}

/**
 * New shape with the same elements; one dim may be -1. A view wherever the strides allow it (any
 * contiguous x; and a strided one whose regrouped dims each stay evenly strided, such as a size-1
 * dim dropped or added, or one head's slice of a packed projection split into heads), else a copy.
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const known = shape.filter((d) => d !== -1);
  const resolved = shape.map((d) => (d === -1 ? x.size / Math.max(1, numel(known)) : d));
  checkShape(resolved);
  if (shape.filter((d) => d === -1).length > 1 || numel(resolved) !== x.size) {
    throw new Error(`cannot reshape [${x.shape}] (${x.size} elements) to [${shape}]`);
  }
  const strides = x.isContiguous ? contiguousStrides(resolved) : viewStrides(x.shape, x.strides, resolved);
  const c = strides ? x : noGrad(() => contiguous(x));
  const out = c.view(resolved, strides ?? contiguousStrides(resolved), c.offset);
  if (c !== x) c.dispose(); // the view co-owns the copy
  return fromOp("reshape", out, [x], (g) => [reshape(g, x.shape)]);
}

/**
 * The strides that read `x` (shape, strides) as `shape`, or null where no strides can. The dims
 * of x fall into chunks, each a run that is contiguous within itself (stride[i] = stride[i + 1] *
 * shape[i + 1]); a reshape is a view when every new dim lies within one chunk (PyTorch's rule).
 */
function viewStrides(from: Shape, fromStrides: Shape, shape: Shape): number[] | null {
  if (numel(from) === 0) return contiguousStrides(shape);
  const strides: number[] = new Array(shape.length);
  let d = shape.length - 1, base = fromStrides[from.length - 1], chunk = 1, made = 1;
  for (let i = from.length - 1; i >= 0; i--) {
    chunk *= from[i];
    if (i > 0 && (from[i - 1] === 1 || fromStrides[i - 1] === chunk * base)) continue; // the chunk goes on
    for (; d >= 0 && (made < chunk || shape[d] === 1); d--) {
      strides[d] = made * base;
      made *= shape[d];
    }
    if (made !== chunk) return null;
    if (i > 0) [base, chunk, made] = [fromStrides[i - 1], 1, 1];
  }
  return d === -1 ? strides : null;
}

/** Reorders dims; `dims[i]` is the input dim that becomes output dim i. A view. */
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const d = dims.map((a) => normAxis(a, x.ndim));
  if (d.length !== x.ndim || new Set(d).size !== d.length) {
    throw new Error(`bad permutation [${dims}] of ${x.ndim} dims`);
  }
  const out = x.view(d.map((a) => x.shape[a]), d.map((a) => x.strides[a]));
  const inverse = d.map((_, i) => d.indexOf(i));
  return fromOp("permute", out, [x], (g) => [permute(g, inverse)]);
}

export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const dims = [...x.shape.keys()];
  const [i, j] = [normAxis(a, x.ndim), normAxis(b, x.ndim)];
  [dims[i], dims[j]] = [dims[j], dims[i]];
  return permute(x, dims);
}

/** Broadcasts to `shape` (size-1 dims stretch, new dims lead) as a view with stride 0. */
export function expand(x: Tensor, shape: Shape): Tensor {
  const lead = shape.length - x.ndim;
  const strides = shape.map((d, i) => {
    const s = x.shape[i - lead];
    if (i < lead || (s === 1 && d !== 1)) return 0;
    if (s !== d) throw new Error(`cannot expand [${x.shape}] to [${shape}]`);
    return x.strides[i - lead];
  });
  if (lead < 0) throw new Error(`cannot expand [${x.shape}] to fewer dims [${shape}]`);
  const out = x.view([...shape], strides);
  return fromOp("expand", out, [x], (g) => [sumTo(g, x.shape)]);
}

/** Alias of expand, under NumPy's name. */
export const broadcastTo = expand;

/** Elements start..end-1 along `axis` (negative indices count from the end). A view. */
export function slice(x: Tensor, axis: number, start: number, end = x.shape[normAxis(axis, x.ndim)]): Tensor {
  const a = normAxis(axis, x.ndim), n = x.shape[a];
  const s = Math.min(Math.max(start < 0 ? start + n : start, 0), n);
  const e = Math.min(Math.max(end < 0 ? end + n : end, s), n);
  const shape = x.shape.map((d, i) => (i === a ? e - s : d));
  const out = x.view(shape, x.strides, x.offset + s * x.strides[a]);
  // the gradient is g inside x's shape, zeros elsewhere: the engine adds it in place (tensor.ts, Part)
  const starts = x.shape.map((_, i) => (i === a ? s : 0));
  return fromOp("slice", out, [x], (g) => [e - s === n ? g : { grad: g, starts }]);
}

/** Pads each dim by [before, after] with `value`. */
export function pad(x: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  if (widths.length !== x.ndim || widths.flat().some((w) => !Number.isInteger(w) || w < 0)) {
    throw new Error(`pad widths must be [before, after] >= 0 for each of ${x.ndim} dims`);
  }
  // nothing to add (the gradient of a slice that kept every element along its axis): a view
  if (widths.every(([before, after]) => before === 0 && after === 0)) {
    return fromOp("pad", x.view(x.shape, x.strides), [x], (g) => [g]);
  }
  const out = full(x.shape.map((d, i) => d + widths[i][0] + widths[i][1]), value, {
    device: x.device,
    dtype: x.dtype,
  });
  const dst = region(out, x.shape, widths.map((w) => w[0]));
  copyInto(dst, x);
  dst.dispose();
  return fromOp("pad", out, [x], (g) => [region(g, x.shape, widths.map((w) => w[0]))]);
}

/** The box of `shape` starting at `starts` inside `t`, as a plain view (no autograd record). */
function region(t: Tensor, shape: Shape, starts: readonly number[]): Tensor {
  return t.view(shape, t.strides, t.offset + starts.reduce((o, s, i) => o + s * t.strides[i], 0));
}

/** Joins tensors along an existing axis. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("concat of no tensors");
  const a = normAxis(axis, xs[0].ndim);
  for (const x of xs) {
    if (x.ndim !== xs[0].ndim || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat along ${axis}: shapes [${xs[0].shape}] and [${x.shape}] differ off-axis`);
    }
  }
  const total = xs.reduce((s, x) => s + x.shape[a], 0);
  const out = empty(xs[0].shape.map((d, i) => (i === a ? total : d)), {
    device: xs[0].device,
    dtype: xs[0].dtype,
  });
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    const dst = region(out, x.shape, x.shape.map((_, i) => (i === a ? at : 0)));
    copyInto(dst, x);
    dst.dispose();
    at += x.shape[a];
  }
  return fromOp("concat", out, xs, (g) => xs.map((x, k) => slice(g, a, starts[k], starts[k] + x.shape[a])));
}

/** Joins tensors along a new axis. */
export function stack(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new Error("stack of no tensors");
  const a = normAxis(axis, xs[0].ndim + 1);
  return concat(xs.map((x) => unsqueeze(x, a)), a);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.ndim + 1);
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
}

/** Drops the given size-1 axis, or all of them. */
export function squeeze(x: Tensor, axis?: number): Tensor {
  const drop = axis === undefined ? x.shape.map((d, i) => (d === 1 ? i : -1)) : [normAxis(axis, x.ndim)];
  if (axis !== undefined && x.shape[drop[0]] !== 1) {
    throw new Error(`cannot squeeze dim ${axis} of [${x.shape}]`);
  }
  return reshape(x, x.shape.filter((_, i) => !drop.includes(i)));
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  const s = normAxis(start, x.ndim), e = normAxis(end, x.ndim);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}
