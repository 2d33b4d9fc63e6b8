// Shapes, strides and broadcasting: the index arithmetic every op shares.

export type Shape = readonly number[];

/** Tensors have at most this many dims; kernels index with fixed-size stride tables. */
export const MAX_DIMS = 8;

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function isContiguous(shape: Shape, strides: Shape): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i];
  }
  return true;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting: align trailing dims; a dim of 1 stretches. */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = n - s.length + i, d = s[i];
      if (out[j] === 1) out[j] = d;
      else if (d !== 1 && d !== out[j]) {
        throw new Error(`shapes [${shapes.map((x) => x.join(",")).join("] and [")}] do not broadcast`);
      }
    }
  }
  return out;
}

/** Resolves a possibly negative axis against ndim, with a clear error when out of range. */
export function normAxis(axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) {
    throw new Error(`axis ${axis} out of range for ${ndim}-d tensor`);
  }
  return a;
}

/** Axes to reduce: `undefined` means all; duplicates rejected; result sorted. */
export function normAxes(axes: number | readonly number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return [...Array(ndim).keys()];
  const list = (typeof axes === "number" ? [axes] : axes).map((a) => normAxis(a, ndim));
  if (new Set(list).size !== list.length) throw new Error(`repeated axis in [${axes}]`);
  return list.sort((x, y) => x - y);
}

export function checkShape(shape: Shape): void {
  if (shape.length > MAX_DIMS) throw new Error(`tensors have at most ${MAX_DIMS} dims, got [${shape}]`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(`invalid shape [${shape}]: dims must be integers >= 0`);
    }
  }
}
