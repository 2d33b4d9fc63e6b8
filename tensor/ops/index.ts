// Ops that index with an i32 tensor: embedding (gather rows; the gradient scatter-adds into the
// table) and pick (one element per row, the core of cross-entropy).

import { gatherWGSL, indexMaskWGSL, pickGradWGSL, pickWGSL, scatterAddWGSL } from "../../kernels/index.ts";
import { empty, zeros } from "../create.ts";
import { gpu } from "../storage.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { dense, denseBinding, denseHost, packed } from "./movement.ts";
import { register } from "./registry.ts";

register("embedding", "pick");

/** Fails loudly where a kernel would silently read 0: indices known on the host must be in range. */
export function checkRange(idx: Tensor, n: number, what: string, ignore?: number): void {
  if (idx.dtype !== "i32") throw new Error(`${what}: indices must be an i32 tensor, got ${idx.dtype}`);
  const r = idx.storage.range;
  if (!r) return;
  const bad = (v: number) => v !== ignore && (v < 0 || v >= n);
  if (bad(r.min) || bad(r.max)) {
    throw new Error(
      `${what}: index range [${r.min}, ${r.max}] outside [0, ${n})${
        ignore === undefined ? "" : ` (ignore ${ignore})`
      }`,
    );
  }
}

/** table [V, D] gathered at idx (any shape) -> [...idx.shape, D]. */
export function embedding(idx: Tensor, table: Tensor): Tensor {
  if (table.ndim !== 2) throw new Error(`embedding table must be [V, D], got [${table.shape}]`);
  const [V, D] = table.shape;
  checkRange(idx, V, "embedding");
  const ix = packed(idx), tb = dense(table);
  const out = empty([...idx.shape, D], { device: table.device, dtype: table.dtype });
  if (out.device === "cpu") {
    const I = ix.storage.host!, T = denseHost(tb), O = out.storage.host!;
    for (let n = 0; n < I.length; n++) for (let d = 0; d < D; d++) O[n * D + d] = T[I[n] * D + d];
  } else {
    gpu().run({
      name: "gather",
      code: gatherWGSL(),
      params: [out.size, D, V],
      reads: [denseBinding(tb), ix.storage.binding],
      writes: [out.storage.binding],
      threads: out.size,
    });
  }
  if (tb !== table) tb.dispose();
  return fromOp("embedding", out, [table], (g) => {
    const gt = zeros([V, D], { device: g.device, dtype: g.dtype }), gc = packed(g);
    if (g.device === "cpu") {
      const I = ix.storage.host!, G = gc.storage.host!, T = gt.storage.host!;
      for (let n = 0; n < I.length; n++) for (let d = 0; d < D; d++) T[I[n] * D + d] += G[n * D + d];
    } else {
      gpu().run({
        name: "scatter_add",
        code: scatterAddWGSL(),
        params: [gc.size, D, V],
        reads: [gc.storage.binding, ix.storage.binding],
        writes: [gt.storage.binding],
        threads: gc.size,
      });
    }
    return [gt];
  });
}

/** x [N, C] at column t[n] of each row -> [N]; rows whose target is `ignoreIndex` give 0. */
export function pick(x: Tensor, t: Tensor, ignoreIndex = -100): Tensor {
  if (x.ndim !== 2 || t.ndim !== 1 || t.shape[0] !== x.shape[0]) {
    throw new Error(`pick: need x [N, C] and targets [N], got [${x.shape}] and [${t.shape}]`);
  }
  const [N, C] = x.shape;
  checkRange(t, C, "pick", ignoreIndex);
  const xc = packed(x), tc = packed(t);
  const out = empty([N], { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = xc.storage.host!, T = tc.storage.host!, O = out.storage.host!;
    for (let n = 0; n < N; n++) O[n] = T[n] === ignoreIndex ? 0 : X[n * C + T[n]];
  } else {
    gpu().run({
      name: "pick",
      code: pickWGSL(),
      params: [N, C, ignoreIndex >>> 0, 0],
      reads: [xc.storage.binding, tc.storage.binding],
      writes: [out.storage.binding],
      threads: N,
    });
  }
  if (xc !== x) xc.dispose();
  return fromOp("pick", out, [x], (g) => {
    const dx = empty([N, C], { device: g.device, dtype: g.dtype }), gc = packed(g);
    if (g.device === "cpu") {
      const T = tc.storage.host!, G = gc.storage.host!, D = dx.storage.host!;
      for (let n = 0; n < N; n++) if (T[n] !== ignoreIndex) D[n * C + T[n]] = G[n];
    } else {
      gpu().run({
        name: "pick_grad",
        code: pickGradWGSL(),
        params: [N * C, C, ignoreIndex >>> 0],
        reads: [gc.storage.binding, tc.storage.binding],
        writes: [dx.storage.binding],
        threads: N * C,
      });
    }
    return [dx];
  });
}

/** 1 where t != ignoreIndex, else 0 (same shape as t, dtype of `like`). Not differentiable. */
export function indexMask(t: Tensor, ignoreIndex: number, like: Tensor): Tensor {
  const tc = packed(t);
  const out = empty(t.shape, { device: t.device, dtype: like.dtype });
  if (t.device === "cpu") {
    const T = tc.storage.host!, O = out.storage.host!;
    for (let i = 0; i < T.length; i++) O[i] = T[i] !== ignoreIndex ? 1 : 0;
  } else {
    gpu().run({
      name: "index_mask",
      code: indexMaskWGSL(),
      params: [t.size, ignoreIndex >>> 0],
      reads: [tc.storage.binding],
      writes: [out.storage.binding],
      threads: t.size,
    });
  }
  if (tc !== t) tc.dispose();
  return out;
}
