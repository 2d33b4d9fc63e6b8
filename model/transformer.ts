// The decoder's building blocks with PyTorch's parameter names (nn.MultiheadAttention,
// nn.TransformerDecoderLayer), so a state dict from the PyTorch reference loads unchanged.

import { F, nn, rand, type Tensor, type TensorOptions, zeros } from "../tensor/mod.ts";
import { attention } from "./attention.ts";

/** Keys and values split into heads: [B, H, Tk, dh] each. */
export interface KeysValues {
  k: Tensor;
  v: Tensor;
}

/** Where a layer's self-attention keys live during incremental decoding (see kv_cache.ts). */
export interface SelfCache extends KeysValues {
  /** positions already written; the new tokens go to [position, position + T) */
  position: number;
}

export class MultiheadAttention extends nn.Module {
  /** [3d, d]: rows [0, d) project queries, [d, 2d) keys, [2d, 3d) values (PyTorch's packing). */
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: nn.Linear;
  readonly headDim: number;

  constructor(readonly dModel: number, readonly heads: number, readonly dropout: number, o: TensorOptions) {
    super();
    if (dModel % heads) throw new Error(`d_model ${dModel} is not divisible by ${heads} heads`);
    this.headDim = dModel / heads;
    const bound = Math.sqrt(6 / (4 * dModel)); // xavier_uniform on [3d, d], as PyTorch
    this.inProjWeight = this.param(
      "in_proj_weight",
      rand([3 * dModel, dModel], { ...o, low: -bound, high: bound }),
    );
    this.inProjBias = this.param("in_proj_bias", zeros([3 * dModel], o));
    this.outProj = new nn.Linear(dModel, dModel, o);
  }

  override children(): [string, nn.Module][] {
    return [["out_proj", this.outProj]];
  }

  /**
   * x [B, T, d] through `n` consecutive parts of the packed projection, from `first` (0 query,
   * 1 key, 2 value), as one product -> n views [B, H, T, dh] of its [B, T, n, H, dh] output: one
   * matmul and one bias add instead of n, and their gradients summed by one backward.
   */
  project(x: Tensor, first: 0 | 1 | 2, n: 1 | 2 | 3): Tensor[] {
    const d = this.dModel, H = this.heads, dh = this.headDim, [B, T] = x.shape;
    const rows = (t: Tensor) => F.slice(t, 0, first * d, (first + n) * d);
    const y = F.add(F.matmul(x, F.transpose(rows(this.inProjWeight))), rows(this.inProjBias)); // [B, T, n d]
    const parts = F.reshape(y, [B, T, n, H, dh]);
    return [...Array(n).keys()].map((i) =>
      F.permute(F.reshape(F.slice(parts, 2, i, i + 1), [B, T, H, dh]), [0, 2, 1, 3])
    );
  }

  /** The memory's keys and values, computed once per image batch for cross-attention. */
  keysValues(memory: Tensor): KeysValues {
    const [k, v] = this.project(memory, 1, 2);
    return { k, v };
  }

  /**
   * Attends from x [B, T, d] to `kv` (cross-attention), or to x itself (self-attention, causal),
   * writing this step's keys into `cache` when decoding incrementally. Returns [B, T, d] and, when
   * asked, the weights averaged over heads [B, T, Tk].
   */
  forward(
    x: Tensor,
    o: {
      kv?: KeysValues;
      cache?: SelfCache;
      keyPadding?: Tensor;
      training: boolean;
      returnWeights?: boolean;
    },
  ): { out: Tensor; weights: Tensor | null } {
    const [B, T] = x.shape;
    const [q, k, v] = this.project(x, 0, o.kv ? 1 : 3);
    let kv = o.kv ?? { k, v };
    if (!o.kv && o.cache) kv = writeCache(o.cache, kv, T);
    const r = attention(q, kv.k, kv.v, {
      causal: !o.kv,
      keyPadding: o.keyPadding,
      dropout: this.dropout,
      training: o.training,
      returnWeights: o.returnWeights,
    });
    const merged = F.reshape(F.permute(r.out, [0, 2, 1, 3]), [B, T, this.dModel]);
    return { out: this.outProj.forward(merged), weights: r.weights && F.mean(r.weights, 1) };
  }
}

/** Stores the new keys at [position, position + T) and returns views of everything so far. */
function writeCache(cache: SelfCache, kv: KeysValues, T: number): KeysValues {
  const end = cache.position + T;
  if (end > cache.k.shape[2]) {
    throw new Error(`KV cache holds ${cache.k.shape[2]} positions, decoding position ${end - 1}`);
  }
  for (const [buf, x] of [[cache.k, kv.k], [cache.v, kv.v]]) {
    const slot = F.slice(buf, 2, cache.position, end);
    F.copyInto(slot, x);
    slot.dispose();
  }
  return { k: F.slice(cache.k, 2, 0, end), v: F.slice(cache.v, 2, 0, end) };
}

export interface LayerOptions {
  dModel: number;
  heads: number;
  ffnDim: number;
  dropout: number;
  /** dropout on the attention weights (the seed: same as `dropout`); 0 lets the fused kernel train */
  attentionDropout?: number;
  /** LayerNorm before each block (pre-norm) instead of after each residual sum (post-norm). */
  preNorm: boolean;
}

/** nn.TransformerDecoderLayer (ReLU, batch first): self-attention, cross-attention, feed-forward. */
export class DecoderLayer extends nn.Module {
  readonly selfAttn: MultiheadAttention;
  readonly crossAttn: MultiheadAttention;
  readonly linear1: nn.Linear;
  readonly linear2: nn.Linear;
  readonly norm1: nn.LayerNorm;
  readonly norm2: nn.LayerNorm;
  readonly norm3: nn.LayerNorm;

  constructor(readonly opts: LayerOptions, o: TensorOptions) {
    super();
    const { dModel: d, heads, ffnDim, dropout, attentionDropout = dropout } = opts;
    this.selfAttn = new MultiheadAttention(d, heads, attentionDropout, o);
    this.crossAttn = new MultiheadAttention(d, heads, attentionDropout, o);
    this.linear1 = new nn.Linear(d, ffnDim, o);
    this.linear2 = new nn.Linear(ffnDim, d, o);
    this.norm1 = new nn.LayerNorm(d, 1e-5, o);
    this.norm2 = new nn.LayerNorm(d, 1e-5, o);
    this.norm3 = new nn.LayerNorm(d, 1e-5, o);
  }

  override children(): [string, nn.Module][] {
    return [
      ["self_attn", this.selfAttn],
      ["multihead_attn", this.crossAttn],
      ["linear1", this.linear1],
      ["linear2", this.linear2],
      ["norm1", this.norm1],
      ["norm2", this.norm2],
      ["norm3", this.norm3],
    ];
  }

  /** x [B, T, d]; `memory` is the image tokens' keys and values for this layer. */
  forward(
    x: Tensor,
    memory: KeysValues,
    o: { keyPadding?: Tensor; cache?: SelfCache; returnAttention?: boolean } = {},
  ): { x: Tensor; attention: Tensor | null } {
    const training = this.training, p = this.opts.dropout;
    const drop = (t: Tensor) => F.dropout(t, p, training);
    const selfBlock = (h: Tensor) =>
      drop(this.selfAttn.forward(h, { cache: o.cache, keyPadding: o.keyPadding, training }).out);
    let attention: Tensor | null = null;
    const crossBlock = (h: Tensor) => {
      const r = this.crossAttn.forward(h, { kv: memory, training, returnWeights: o.returnAttention });
      attention = r.weights;
      return drop(r.out);
    };
    const ffBlock = (h: Tensor) => drop(this.linear2.forward(drop(F.relu(this.linear1.forward(h)))));
    if (this.opts.preNorm) {
      x = F.add(x, selfBlock(this.norm1.forward(x)));
      x = F.add(x, crossBlock(this.norm2.forward(x)));
      x = F.add(x, ffBlock(this.norm3.forward(x)));
    } else {
      x = this.norm1.forward(F.add(x, selfBlock(x)));
      x = this.norm2.forward(F.add(x, crossBlock(x)));
      x = this.norm3.forward(F.add(x, ffBlock(x)));
    }
    return { x, attention };
  }
}
