// 2-D pooling on NCHW tensors: maxPool2d, avgPool2d, adaptiveAvgPool2d (kernels/pool.ts), with
// CPU twins that follow the same window definitions.

import { type PoolDims, poolGradWGSL, type PoolMode, poolWGSL } from "../../kernels/pool.ts";
import { empty } from "../create.ts";
import { gpu } from "../storage.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { type Pair, pair } from "./conv.ts";
import { packed } from "./movement.ts";
import { register } from "./registry.ts";

register("maxPool2d", "avgPool2d", "adaptiveAvgPool2d");

interface Pool extends PoolDims {
  mode: PoolMode;
}

/** Window of output o along one axis (see kernels/pool.ts): [start, end) stepping by step. */
function win(q: Pool, axis: 0 | 1, o: number): [number, number, number] {
  const [In, Out] = axis === 0 ? [q.H, q.OH] : [q.W, q.OW];
  if (q.mode === "adaptive") return [Math.floor((o * In) / Out), Math.ceil(((o + 1) * In) / Out), 1];
  const start = o * q.s[axis] - q.p[axis];
  return [start, start + (q.k[axis] - 1) * q.d[axis] + 1, q.d[axis]];
}

function divisor(q: Pool, [h0, h1]: number[], [w0, w1]: number[]): number {
  if (q.mode === "adaptive") return (h1 - h0) * (w1 - w0);
  if (q.countIncludePad) return (Math.min(h1, q.H + q.p[0]) - h0) * (Math.min(w1, q.W + q.p[1]) - w0);
  return (Math.min(h1, q.H) - Math.max(h0, 0)) * (Math.min(w1, q.W) - Math.max(w0, 0));
}

function forward(q: Pool, x: Tensor): [Tensor, Tensor | null] {
  const xc = packed(x);
  const [N, C] = x.shape, planes = N * C;
  const out = empty([N, C, q.OH, q.OW], { device: x.device, dtype: x.dtype });
  const arg = q.mode === "max" ? empty(out.shape, { device: x.device, dtype: "i32" }) : null;
  if (x.device === "cpu") {
    const X = xc.storage.host!, O = out.storage.host!, A = arg?.storage.host;
    for (let pl = 0, i = 0; pl < planes; pl++) {
      for (let oh = 0; oh < q.OH; oh++) {
        for (let ow = 0; ow < q.OW; ow++, i++) {
          const wh = win(q, 0, oh), ww = win(q, 1, ow);
          let acc = q.mode === "max" ? -Infinity : 0, best = -1;
          for (let ih = Math.max(wh[0], 0); ih < Math.min(wh[1], q.H); ih++) {
            if ((ih - wh[0]) % wh[2]) continue;
            for (let iw = Math.max(ww[0], 0); iw < Math.min(ww[1], q.W); iw++) {
              if ((iw - ww[0]) % ww[2]) continue;
              const v = X[(pl * q.H + ih) * q.W + iw];
              if (q.mode !== "max") acc += v;
              else if (best < 0 || v > acc) [acc, best] = [v, ih * q.W + iw];
            }
          }
          O[i] = q.mode === "max" ? acc : acc / divisor(q, wh, ww);
          if (A) A[i] = best;
        }
      }
    }
  } else {
    gpu().run({
      name: `pool_${q.mode}`,
      code: poolWGSL(q.mode, q),
      params: [out.size],
      reads: [xc.storage.binding],
      writes: arg ? [out.storage.binding, arg.storage.binding] : [out.storage.binding],
      threads: out.size,
    });
  }
  if (xc !== x) xc.dispose();
  return [out, arg];
}

/** dx for dy, visiting from each input element the windows that contain it. */
function backward(q: Pool, dy: Tensor, arg: Tensor | null, xShape: readonly number[]): Tensor {
  const g = packed(dy);
  const [N, C] = xShape, planes = N * C;
  const dx = empty(xShape, { device: dy.device, dtype: dy.dtype });
  if (dy.device === "cpu") {
    // Scatter form: simpler than the kernel's gather and independent of it.
    const G = g.storage.host!, D = dx.storage.host!, A = arg?.storage.host;
    for (let pl = 0, o = 0; pl < planes; pl++) {
      for (let oh = 0; oh < q.OH; oh++) {
        for (let ow = 0; ow < q.OW; ow++, o++) {
          if (A) {
            D[pl * q.H * q.W + A[o]] += G[o];
            continue;
          }
          const wh = win(q, 0, oh), ww = win(q, 1, ow), share = G[o] / divisor(q, wh, ww);
          for (let ih = Math.max(wh[0], 0); ih < Math.min(wh[1], q.H); ih += 1) {
            for (let iw = Math.max(ww[0], 0); iw < Math.min(ww[1], q.W); iw += 1) {
              D[(pl * q.H + ih) * q.W + iw] += share;
            }
          }
        }
      }
    }
  } else {
    gpu().run({
      name: `pool_${q.mode}_grad`,
      code: poolGradWGSL(q.mode, q),
      params: [dx.size],
      reads: arg ? [g.storage.binding, arg.storage.binding] : [g.storage.binding],
      writes: [dx.storage.binding],
      threads: dx.size,
    });
  }
  if (g !== dy) g.dispose();
  return dx;
}

function pool(x: Tensor, q: Omit<Pool, "H" | "W" | "OH" | "OW">, outSize?: [number, number]): Tensor {
  if (x.ndim !== 4) throw new Error(`${q.mode} pooling needs NCHW input, got [${x.shape}]`);
  const [, , H, W] = x.shape;
  const size = (In: number, a: 0 | 1) =>
    Math.floor((In + 2 * q.p[a] - q.d[a] * (q.k[a] - 1) - 1) / q.s[a]) + 1;
  const [OH, OW] = outSize ?? [size(H, 0), size(W, 1)];
  if (OH <= 0 || OW <= 0) throw new Error(`${q.mode} pooling: window larger than input [${x.shape}]`);
  if (q.p.some((p, a) => p > q.k[a] / 2)) {
    throw new Error(`pooling padding ${q.p} exceeds half the window ${q.k}`);
  }
  const full: Pool = { ...q, H, W, OH, OW };
  const [out, arg] = forward(full, x);
  return fromOp(q.mode, out, [x], (g) => [backward(full, g, arg, x.shape)]);
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}

export function maxPool2d(x: Tensor, kernel: Pair, o: PoolOptions = {}): Tensor {
  const k = pair(kernel, 1);
  return pool(x, {
    mode: "max",
    k,
    s: pair(o.stride, k[0]),
    p: pair(o.padding, 0),
    d: pair(o.dilation, 1),
    countIncludePad: false,
  });
}

export function avgPool2d(
  x: Tensor,
  kernel: Pair,
  o: Omit<PoolOptions, "dilation"> & { countIncludePad?: boolean } = {},
): Tensor {
  const k = pair(kernel, 1);
  return pool(x, {
    mode: "avg",
    k,
    s: pair(o.stride, k[0]),
    p: pair(o.padding, 0),
    d: [1, 1],
    countIncludePad: o.countIncludePad ?? true,
  });
}

/** Average over windows that tile the input into `size` cells (PyTorch's window rule). */
export function adaptiveAvgPool2d(x: Tensor, size: Pair): Tensor {
  const [OH, OW] = pair(size, 1);
  return pool(x, { mode: "adaptive", k: [1, 1], s: [1, 1], p: [0, 0], d: [1, 1], countIncludePad: false }, [
    OH,
    OW,
  ]);
}
