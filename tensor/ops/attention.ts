// Fused scaled-dot-product attention (kernels/attention.ts): softmax(scale * Q K^T + masks) V
// without materialising the score matrix, with a backward that recomputes probabilities from the
// saved row log-sum-exps. K and V may be strided views into a larger KV cache.

import { f32Bits } from "../../kernels/common.ts";
import { attentionGradKVWGSL, attentionGradQWGSL, attentionWGSL, LAYOUT } from "../../kernels/attention.ts";
import {
  type AttentionBlock,
  attentionBlockGradKVWGSL,
  attentionBlockGradQWGSL,
  attentionBlockWGSL,
} from "../../kernels/attention_block.ts";
import {
  type AttentionPass,
  attentionTiledFits,
  attentionTiledGrid,
  attentionTiledWGSL,
} from "../../kernels/attention_tiled.ts";
import { empty } from "../create.ts";
import { gpu } from "../storage.ts";
import type { Dispatch } from "../webgpu/runtime.ts";
import { runVariant, type Variant, VARIANTS } from "../webgpu/variants.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { packed } from "./movement.ts";
import { rowsTexture } from "./texture.ts";
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

/**
 * An operand as the kernels read it: rows of D contiguous floats, wherever the rows are (any b, h
 * and t strides: [B, T, H, D] heads permuted to [B, H, T, D] are read in place), else a packed copy.
 */
const rowsOf = (t: Tensor): Tensor => (t.strides[3] === 1 || t.shape[3] === 1 ? t : packed(t));

/**
 * `count` outputs of shape [B, H, T, D], laid out token-major ([B, T, H, D] underneath) in one
 * buffer: permuting an output back to [B, T, H, D] and merging the heads is then a free view.
 */
function tokenMajor(B: number, H: number, T: number, D: number, like: Tensor, count = 1): Tensor[] {
  const buf = empty([count, B, T, H, D], { device: like.device, dtype: like.dtype }), n = B * T * H * D;
  const outs = [...Array(count).keys()].map((i) => buf.view([B, H, T, D], [T * H * D, D, H * D, 1], i * n));
  buf.dispose();
  return outs;
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
  const [qc, kc, vc, pc] = [rowsOf(q), rowsOf(k), rowsOf(v), pad ? packed(pad) : null];
  const [out] = tokenMajor(B, H, Tq, D, q);
  const stats = empty([g.BH * Tq, 2], { device: q.device, dtype: q.dtype });
  if (q.device === "cpu") attentionCPU(g, qc, kc, vc, pc, out, stats);
  else {
    const tex = textureRows(g, [qc, kc, vc]), reads = [qc, kc, vc, pc ?? qc].map((t) => t.storage.binding);
    runPass("attention", "forward", g, pc, { q: qc, k: kc, v: vc, dO: null, out }, Tq, tex, {
      row: () => attentionWGSL(D),
      block: (b) => attentionBlockWGSL(D, b),
      reads,
      texReads: tex && [...tex.textures.map((texture) => ({ texture })), reads[3]],
      writes: [out.storage.binding, stats.storage.binding],
    });
    tex?.textures.forEach((t) => gpu().textures.release(t));
  }
  return fromOp("attention", out, [q, k, v], (dO) => {
    const gc = rowsOf(dO);
    const [dQ] = tokenMajor(B, H, Tq, D, q), [dK, dV] = tokenMajor(B, H, Tk, D, q, 2);
    if (q.device === "cpu") attentionBackwardCPU(g, qc, kc, vc, pc, gc, dQ, dK, dV);
    else {
      // q, k, v and dO as textures once, for both passes
      const tex = textureRows(g, [qc, kc, vc, gc]), t = tex?.textures.map((texture) => ({ texture }));
      const [Q, K, V, P, S, G, O] = [qc, kc, vc, pc ?? qc, stats, gc, out].map((x) => x.storage.binding);
      const ins = { q: qc, k: kc, v: vc, dO: gc },
        dq = { ...ins, out: dQ, o: out },
        dkv = { ...ins, out: dK, dV };
      // the dQ pass works out D_i = dO_i . O_i and writes it beside lse, for the dK/dV pass
      runPass("attention_dq", "dq", g, pc, dq, Tq, tex, {
        row: () => attentionGradQWGSL(D),
        block: (b) => attentionBlockGradQWGSL(D, b),
        reads: [Q, K, V, P, G, O],
        texReads: t ? [t[0], t[1], t[2], P, t[3], O] : null,
        writes: [dQ.storage.binding, S],
      });
      runPass("attention_dkv", "dkv", g, pc, dkv, Tk, tex, {
        row: () => attentionGradKVWGSL(D),
        block: (b) => attentionBlockGradKVWGSL(D, b),
        reads: [Q, K, V, P, S, G],
        texReads: t ? [t[0], t[1], t[2], P, S, t[3]] : null,
        writes: [dK.storage.binding],
      });
      tex?.textures.forEach((t) => gpu().textures.release(t));
    }
    return [dQ, dK, dV];
  });
}

/** Operands as textures (see textureRows): the textures, and each one's layout for params. */
interface TextureRows {
  textures: GPUTexture[];
  layouts: number[][];
}

/**
 * q, k, v (and dO) as textures for the blocked kernels' texture form (kernels/attention_block.ts),
 * copied where their buffers allow it, else packed (tensor/ops/texture.ts, rowsTexture); or null:
 * only on CPU adapters, where texel fetches beat storage loads by far more than that costs, and only
 * where each row is read by several threads (not a decoding step's single query).
 */
function textureRows(g: Geometry, ts: Tensor[]): TextureRows | null {
  if (!gpu().adapter.fallback || g.D % 4 || Math.min(g.Tq, g.Tk) < 8) return null;
  const textures: GPUTexture[] = [], layouts: number[][] = [];
  for (const t of ts) {
    const r = rowsTexture(t, textures);
    if (!r) break;
    layouts.push(r.layout);
  }
  if (layouts.length === ts.length) return { textures, layouts };
  textures.forEach((t) => gpu().textures.release(t));
  return null;
}

/**
 * One pass over `rows` rows per head (queries, or keys for dK/dV): the one-row-per-thread kernel,
 * a blocked one with R rows per thread (reading storage, or texels where `tex` holds the rows),
 * or a workgroup per block of rows walking tiles in workgroup memory
 * (kernels/attention_tiled.ts), as the tuner picks for the shape (rows x keys x D).
 */
function runPass(
  op: string,
  pass: AttentionPass,
  g: Geometry,
  pad: Tensor | null,
  operands: Operands,
  rows: number,
  tex: TextureRows | null,
  { row, block, reads, texReads, writes }: {
    row: () => string;
    block: (b: AttentionBlock) => string;
    reads: Dispatch["reads"];
    /** `reads` with the operands' textures in their places */
    texReads: Dispatch["reads"] | null;
    writes: Dispatch["writes"];
  },
): void {
  const io = { params: params(g, pad, operands), reads, writes }, blocks = fitsBlocks(g, operands);
  // the tiled kernels hold a tile of D-float rows in workgroup memory: D bounds them
  const fits = (v: Variant) =>
    blocks(v) && (!v.attnTile || attentionTiledFits(pass, g.D, v.attnTile)) &&
    (!v.attnBlock?.texture || !!tex);
  const dims = { M: g.BH * g.Tq, N: g.Tk, K: g.D, ...(pass === "dkv" ? { form: `fit${keyFit(g.Tk)}` } : {}) };
  runVariant(op, dims, fits, (v) =>
    v.attnTile
      ? {
        name: `${op}_${v.name}`,
        code: attentionTiledWGSL(pass, g.D, v.attnTile),
        ...io,
        workgroups: attentionTiledGrid(g.BH, rows, v.attnTile),
      }
      : {
        name: v.attnBlock ? `${op}_${v.name}` : op,
        code: v.attnBlock ? block(v.attnBlock) : row(),
        ...io,
        ...(v.attnBlock?.texture ? { reads: texReads!, params: params(g, pad, operands, tex!.layouts) } : {}),
        threads: g.BH * Math.ceil(rows / (v.attnBlock?.rows ?? 1)),
        group: v.attnBlock?.group,
      });
}

/** The dK/dV pass's block sizes in its texture form (CPU adapters' choice), largest first: 8, 7, 4. */
const KEY_BLOCKS = [
  ...new Set(VARIANTS.attention_dkv.flatMap((v) => (v.attnBlock?.texture ? [v.attnBlock.rows] : []))),
].sort((a, b) => b - a);

/**
 * Which of the dK/dV pass's block sizes pads the keys least (ties to the larger): 7 for the 49 image
 * tokens of a 7 x 7 feature map, 8 for 32 or 64 keys, 4 for 75. The size class alone puts 49 and 75
 * keys together, and 7 rows a thread are what 49 wants, not 75.
 */
const keyFit = (keys: number) =>
  KEY_BLOCKS.reduce((best, r) => (Math.ceil(keys / r) * r < Math.ceil(keys / best) * best ? r : best));

/**
 * The operands of one pass: inputs, the incoming gradient (backward), the output (and dV's place),
 * and the forward's output (the dQ pass reads it).
 */
interface Operands {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dO: Tensor | null;
  out: Tensor;
  dV?: Tensor;
  o?: Tensor;
}

/** A row layout as the kernels take it (kernels/attention.ts): offset, then the b, h and t strides. */
const layout = (
  t: Tensor | null,
) => (t ? [t.offset, t.strides[0], t.strides[1], t.strides[2]] : [0, 0, 0, 0]);

/** The blocked kernels load rows as vec4s: the head size and every layout must allow it. */
const fitsBlocks = (g: Geometry, io: Operands) => (variant: Variant) =>
  !variant.attnBlock ||
  [g.D, ...[io.q, io.k, io.v, io.dO, io.out, io.dV ?? null, io.o ?? null].flatMap(layout)].every((x) =>
    x % 4 === 0
  );

/** `textures`: the layouts of q, k, v (and dO) in their textures, for the texture form. */
function params(g: Geometry, pad: Tensor | null, io: Operands, textures: number[][] = []): number[] {
  const p = [
    g.BH,
    g.Tq,
    g.Tk,
    g.H,
    f32Bits(g.scale),
    g.causal ? 1 : 0,
    pad ? 1 : 0,
    ...[io.q, io.k, io.v, io.dO, io.out].flatMap((t, i) => textures[i] ?? layout(t)),
    io.dV ? io.dV.offset - io.out.offset : 0,
    ...layout(io.o ?? null),
  ];
  if (p.length !== LAYOUT.o + 4) throw new Error("internal: attention params");
  return p;
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
  qRow: RowIndex,
  kRow: RowIndex,
  bh: number,
  i: number,
) {
  const s = new Float64Array(g.Tk).fill(-Infinity);
  for (let j = 0; j < g.Tk; j++) {
    if (!visible(g, pad, bh, i, j)) continue;
    let acc = 0;
    for (let c = 0; c < g.D; c++) acc += Q[qRow(bh, i) + c] * K[kRow(bh, j) + c];
    s[j] = acc * g.scale;
  }
  const m = Math.max(...s), p = s.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
  const l = p.reduce((a, b) => a + b, 0);
  return { p: p.map((x) => (l > 0 ? x / l : 0)), lse: m + Math.log(l) };
}

type RowIndex = (bh: number, t: number) => number;

/** Element offset of row t of head bh = b * H + h in a [B, H, T, D] view whose rows are contiguous. */
function rowIndex(t: Tensor, H: number): RowIndex {
  const [sb, sh, st] = t.strides;
  return (bh, j) => t.offset + Math.floor(bh / H) * sb + (bh % H) * sh + j * st;
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
  const [qRow, kRow, vRow, oRow] = [q, k, v, out].map((t) => rowIndex(t, g.H));
  for (let bh = 0; bh < g.BH; bh++) {
    for (let i = 0; i < g.Tq; i++) {
      const { p, lse } = row(g, Q!, K!, P, qRow, kRow, bh, i);
      for (let c = 0; c < g.D; c++) {
        let acc = 0;
        for (let j = 0; j < g.Tk; j++) if (p[j]) acc += p[j] * V![vRow(bh, j) + c];
        O![oRow(bh, i) + c] = acc;
      }
      S![2 * (bh * g.Tq + i)] = lse;
    }
  }
}

/** dQ, dK and dV (zeros on entry) from dO, recomputing each query row's probabilities. */
function attentionBackwardCPU(
  g: Geometry,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  pad: Tensor | null,
  dO: Tensor,
  dQ: Tensor,
  dK: Tensor,
  dV: Tensor,
) {
  const [Q, K, V, P, G, DQ, DK, DV] = hosts(q, k, v, pad, dO, dQ, dK, dV);
  const [qRow, kRow, vRow, gRow, dqRow, dkRow, dvRow] = [q, k, v, dO, dQ, dK, dV].map((t) =>
    rowIndex(t, g.H)
  );
  const { D, Tq, Tk } = g;
  for (let bh = 0; bh < g.BH; bh++) {
    for (let i = 0; i < Tq; i++) {
      const { p } = row(g, Q!, K!, P, qRow, kRow, bh, i), qi = qRow(bh, i), gi = gRow(bh, i);
      // dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij'), dP_ij = dO_i . V_j
      const dp = p.map((pj, j) => {
        if (!pj) return 0;
        let acc = 0;
        for (let c = 0; c < D; c++) acc += G![gi + c] * V![vRow(bh, j) + c];
        return acc;
      });
      const di = p.reduce((s, pj, j) => s + pj * dp[j], 0);
      for (let j = 0; j < Tk; j++) {
        if (!p[j]) continue;
        const ds = p[j] * (dp[j] - di) * g.scale;
        for (let c = 0; c < D; c++) {
          DQ![dqRow(bh, i) + c] += ds * K![kRow(bh, j) + c];
          DK![dkRow(bh, j) + c] += ds * Q![qi + c];
          DV![dvRow(bh, j) + c] += p[j] * G![gi + c];
        }
      }
    }
  }
}
