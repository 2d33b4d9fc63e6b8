// Fused scaled-dot-product attention (kernels/attention.ts): softmax(scale * Q K^T + masks) V
// without materialising the score matrix, with a backward that recomputes probabilities from the
// saved row log-sum-exps. K and V may be strided views into a larger KV cache.

import { f32Bits } from "../../kernels/common.ts";
import {
  attentionGradKVWGSL,
  attentionGradQWGSL,
  attentionRowDotWGSL,
  attentionWGSL,
} from "../../kernels/attention.ts";
import {
  attentionBlockGradKVWGSL,
  attentionBlockGradQWGSL,
  attentionBlockWGSL,
} from "../../kernels/attention_block.ts";
import { empty } from "../create.ts";
import { gpu } from "../storage.ts";
import type { Dispatch } from "../webgpu/runtime.ts";
import { runVariant, type Variant } from "../webgpu/variants.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { packed } from "./movement.ts";
import { register } from "./registry.ts";

register("attention");

export interface AttentionOptions {
  /** query i sees keys j <= i + Tk - Tq (end-aligned, as when decoding with a cache) */
  causal?: boolean;
  /** [B, Tk]: nonzero hides that key (padding) */
  keyPadding?: Tensor | null;
  /** default 1 / sqrt(D) */
  scale?: number;
}

interface Geometry {
  BH: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
  scale: number;
  causal: boolean;
}

/** K/V as the kernel reads them: rows of D contiguous floats, one stride per (b, h), one per t. */
function kvView(t: Tensor): Tensor {
  const [B, H] = t.shape, [sb, sh, , sd] = t.strides;
  // the kernel addresses head bh = b * H + h at bh * sh: batch and head strides must agree
  return sd === 1 && (B === 1 || sb === H * sh) ? t : packed(t);
}

export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new Error("attention: q, k, v must be [B, H, T, D]");
  }
  const [B, H, Tq, D] = q.shape, Tk = k.shape[2];
  if (k.shape.join() !== v.shape.join() || k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D) {
    throw new Error(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not agree`);
  }
  const pad = o.keyPadding ?? null;
  if (pad && pad.shape.join() !== `${B},${Tk}`) {
    throw new Error(`attention: keyPadding must be [${B}, ${Tk}], got [${pad.shape}]`);
  }
  const g: Geometry = {
    BH: B * H,
    H,
    Tq,
    Tk,
    D,
    scale: o.scale ?? 1 / Math.sqrt(D),
    causal: o.causal ?? false,
  };
  const [qc, kc, vc, pc] = [packed(q), kvView(k), kvView(v), pad ? packed(pad) : null];
  const out = empty(q.shape, { device: q.device, dtype: q.dtype });
  const stats = empty([g.BH * Tq, 2], { device: q.device, dtype: q.dtype });
  if (q.device === "cpu") attentionCPU(g, qc, kc, vc, pc, out, stats);
  else {
    runPass(
      "attention",
      g,
      Tq,
      fitsBlocks(g, kc, vc),
      () => attentionWGSL(D),
      (R) => attentionBlockWGSL(D, R),
      {
        params: params(g, kc, pc),
        reads: [qc, kc, vc, pc ?? qc].map((t) => t.storage.binding),
        writes: [out.storage.binding, stats.storage.binding],
      },
    );
  }
  return fromOp("attention", out, [q, k, v], (dO) => {
    const dOc = packed(dO);
    const dQ = empty(q.shape, { device: q.device, dtype: q.dtype });
    const dKV = empty([2, B, H, Tk, D], { device: q.device, dtype: q.dtype });
    if (q.device === "cpu") attentionBackwardCPU(g, qc, kc, vc, pc, out, stats, dOc, dQ, dKV);
    else {
      const run = gpu();
      run.run({
        name: "attention_rowdot",
        code: attentionRowDotWGSL(D),
        params: [g.BH, Tq],
        reads: [out.storage.binding, dOc.storage.binding],
        writes: [stats.storage.binding],
        threads: g.BH * Tq,
      });
      const reads = [qc, kc, vc, pc ?? qc, stats, dOc].map((t) => t.storage.binding);
      const p = params(g, kc, pc), fits = fitsBlocks(g, kc, vc);
      runPass(
        "attention_dq",
        g,
        Tq,
        fits,
        () => attentionGradQWGSL(D),
        (R) => attentionBlockGradQWGSL(D, R),
        {
          params: p,
          reads,
          writes: [dQ.storage.binding],
        },
      );
      runPass(
        "attention_dkv",
        g,
        Tk,
        fits,
        () => attentionGradKVWGSL(D),
        (R) => attentionBlockGradKVWGSL(D, R),
        {
          params: p,
          reads,
          writes: [dKV.storage.binding],
        },
      );
    }
    const n = g.BH * Tk * D;
    return [dQ, dKV.view(k.shape, undefined, 0), dKV.view(k.shape, undefined, n)];
  });
}

/**
 * One pass over `rows` rows per head (queries, or keys for dK/dV): the one-row-per-thread kernel,
 * or a blocked one with R rows per thread, as the tuner picks for the shape (rows x keys x D).
 */
function runPass(
  op: string,
  g: Geometry,
  rows: number,
  fits: (v: Variant) => boolean,
  row: () => string,
  block: (R: number) => string,
  io: Pick<Dispatch, "params" | "reads" | "writes">,
): void {
  runVariant(op, { M: g.BH * g.Tq, N: g.Tk, K: g.D }, fits, (v) => ({
    name: v.attnRows ? `${op}_${v.name}` : op,
    code: v.attnRows ? block(v.attnRows) : row(),
    ...io,
    threads: g.BH * Math.ceil(rows / (v.attnRows ?? 1)),
  }));
}

/** The blocked kernels load rows as vec4s: the head size and K/V's strides and offset must allow it. */
const fitsBlocks = (g: Geometry, k: Tensor, v: Tensor) => (variant: Variant) =>
  !variant.attnRows ||
  [g.D, k.offset, k.strides[1], k.strides[2], v.offset, v.strides[1], v.strides[2]].every((x) => x % 4 === 0);

function params(g: Geometry, k: Tensor, pad: Tensor | null): number[] {
  return [
    g.BH,
    g.Tq,
    g.Tk,
    g.H,
    f32Bits(g.scale),
    g.causal ? 1 : 0,
    k.strides[1],
    k.strides[2],
    pad ? 1 : 0,
    k.offset,
  ];
}

// ---- CPU reference ------------------------------------------------------------------------------

function visible(g: Geometry, pad: ArrayLike<number> | null, bh: number, i: number, j: number): boolean {
  if (g.causal && j + g.Tq > i + g.Tk) return false;
  return !(pad && pad[Math.floor(bh / g.H) * g.Tk + j] !== 0);
}

/** Scores and probabilities of one query row (P = 0 where hidden). */
function row(
  g: Geometry,
  Q: ArrayLike<number>,
  K: ArrayLike<number>,
  pad: ArrayLike<number> | null,
  kRow: (bh: number, j: number) => number,
  bh: number,
  i: number,
) {
  const s = new Float64Array(g.Tk).fill(-Infinity);
  for (let j = 0; j < g.Tk; j++) {
    if (!visible(g, pad, bh, i, j)) continue;
    let acc = 0;
    for (let c = 0; c < g.D; c++) acc += Q[(bh * g.Tq + i) * g.D + c] * K[kRow(bh, j) + c];
    s[j] = acc * g.scale;
  }
  const m = Math.max(...s), p = s.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
  const l = p.reduce((a, b) => a + b, 0);
  return { p: p.map((x) => (l > 0 ? x / l : 0)), lse: m + Math.log(l) };
}

/** Element offset of row j of head bh in a [B, H, T, D] view whose rows are contiguous. */
function rowIndex(t: Tensor): (bh: number, j: number) => number {
  return (bh, j) => t.offset + bh * t.strides[1] + j * t.strides[2];
}

function hosts(...ts: (Tensor | null)[]) {
  return ts.map((t) => t?.storage.host ?? null);
}

function attentionCPU(
  g: Geometry,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  pad: Tensor | null,
  out: Tensor,
  stats: Tensor,
) {
  const [Q, K, V, P, O, S] = hosts(q, k, v, pad, out, stats);
  const [kRow, vRow] = [rowIndex(k), rowIndex(v)];
  for (let bh = 0; bh < g.BH; bh++) {
    for (let i = 0; i < g.Tq; i++) {
      const { p, lse } = row(g, Q!, K!, P, kRow, bh, i);
      for (let c = 0; c < g.D; c++) {
        let acc = 0;
        for (let j = 0; j < g.Tk; j++) if (p[j]) acc += p[j] * V![vRow(bh, j) + c];
        O![(bh * g.Tq + i) * g.D + c] = acc;
      }
      S![2 * (bh * g.Tq + i)] = lse;
    }
  }
}

function attentionBackwardCPU(
  g: Geometry,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  pad: Tensor | null,
  _out: Tensor,
  _stats: Tensor,
  dO: Tensor,
  dQ: Tensor,
  dKV: Tensor,
) {
  const [Q, K, V, P, G, DQ, DKV] = hosts(q, k, v, pad, dO, dQ, dKV);
  const [kRow, vRow] = [rowIndex(k), rowIndex(v)];
  const { D, Tq, Tk } = g, dV0 = g.BH * Tk * D;
  for (let bh = 0; bh < g.BH; bh++) {
    for (let i = 0; i < Tq; i++) {
      const { p } = row(g, Q!, K!, P, kRow, bh, i), qi = (bh * Tq + i) * D;
      // dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'), dP_ij = dO_i . V_j
      const dp = p.map((pj, j) => {
        if (!pj) return 0;
        let acc = 0;
        for (let c = 0; c < D; c++) acc += G![qi + c] * V![vRow(bh, j) + c];
        return acc;
      });
      const di = p.reduce((s, pj, j) => s + pj * dp[j], 0);
      for (let j = 0; j < Tk; j++) {
        if (!p[j]) continue;
        const ds = p[j] * (dp[j] - di) * g.scale, kj = (bh * Tk + j) * D;
        for (let c = 0; c < D; c++) {
          DQ![qi + c] += ds * K![kRow(bh, j) + c];
          DKV![kj + c] += ds * Q![qi + c];
          DKV![dV0 + kj + c] += p[j] * G![qi + c];
        }
      }
    }
  }
}
