// CPU reference iteration over strided views: the host-side twin of kernels/common.ts.

import type { Shape } from "./shape.ts";

export interface View {
  strides: Shape;
  offset: number;
}

/**
 * Calls fn(flatIndex, offsets) for every index of `shape` in row-major order, with each view's
 * element offset. An odometer: the innermost dim steps by its stride, carries move outward.
 */
export function forEachOffset(shape: Shape, views: View[], fn: (i: number, offs: number[]) => void): void {
  const nd = shape.length, n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const idx = new Array(nd).fill(0);
  const offs = views.map((v) => v.offset);
  for (let i = 0; i < n; i++) {
    fn(i, offs);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      for (let k = 0; k < views.length; k++) offs[k] += views[k].strides[d];
      if (idx[d] < shape[d]) break;
      for (let k = 0; k < views.length; k++) offs[k] -= views[k].strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/**
 * The same walk over fewer dims: size-1 dims dropped, and each pair of neighbouring dims merged
 * where every view steps across them as one (stride[d] = stride[d + 1] * shape[d + 1]). GPU kernels
 * pay a division and a remainder per dim per element to find a strided offset, so a permuted head
 * split [32, 64, 1, 4, 24] that is really [2048, 96] costs less than half as much.
 */
export function coalesce(shape: Shape, views: View[]): { shape: number[]; views: View[] } {
  const keep = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const dims: number[] = [], strides: number[][] = views.map(() => []);
  for (const d of keep) {
    const last = dims.length - 1;
    if (last >= 0 && views.every((v, k) => strides[k][last] === v.strides[d] * shape[d])) {
      dims[last] *= shape[d];
      views.forEach((v, k) => (strides[k][last] = v.strides[d]));
    } else {
      dims.push(shape[d]);
      views.forEach((v, k) => strides[k].push(v.strides[d]));
    }
  }
  return { shape: dims, views: views.map((v, k) => ({ offset: v.offset, strides: strides[k] })) };
}
