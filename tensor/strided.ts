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
