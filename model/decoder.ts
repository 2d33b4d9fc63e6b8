// The caption decoder: a Transformer decoder over token embeddings that cross-attends to the image
// tokens. Defaults are the seed's (shared/seed/FACTS.md): embedding 256 -> Linear to d_model 512,
// x sqrt(d_model) + sinusoidal positions, LayerNorm, dropout; 10 post-norm layers, 8 heads, FFN 2048
// (ReLU), dropout 0.1; the image tokens LayerNorm'ed, then one Linear + LayerNorm per layer; a
// separate output Linear.

import { F, nn, noGrad, randn, type Tensor, tensor, type TensorOptions, tidy, zeros } from "../tensor/mod.ts";
import { KVCache } from "./kv_cache.ts";
import { DecoderLayer, type KeysValues } from "./transformer.ts";

export interface DecoderOptions {
  vocabSize: number;
  /** width of the image tokens (2048 for ResNet-50/101/152) */
  featureDim: number;
  embedDim: number;
  dModel: number;
  layers: number;
  heads: number;
  ffnDim: number;
  dropout: number;
  /** dropout on attention weights (default: `dropout`, as the seed); 0 lets the fused kernel train */
  attentionDropout?: number;
  /**
   * Learned position embeddings for this many image tokens (0: none, as the seed). Attention is
   * blind to order, so without them only the features themselves say where a token was.
   */
  imagePositions?: number;
  /** "post" (the seed's, PyTorch's default) or "pre": LayerNorm before each block and at the end */
  norm: "post" | "pre";
  /** output logits from the token embedding (through a Linear d_model -> embedDim when they differ) */
  tiedEmbeddings: boolean;
  /** one image projection per layer (the seed's) or one shared by all layers */
  imageProjection: "per-layer" | "shared";
  device?: TensorOptions["device"];
  dtype?: TensorOptions["dtype"];
}

export const DECODER_DEFAULTS: Omit<DecoderOptions, "vocabSize"> = {
  featureDim: 2048,
  embedDim: 256,
  dModel: 512,
  layers: 10,
  heads: 8,
  ffnDim: 2048,
  dropout: 0.1,
  norm: "post",
  tiedEmbeddings: false,
  imageProjection: "per-layer",
};

/** Linear(featureDim -> d_model) + LayerNorm on the image tokens. */
class ImageProjection extends nn.Module {
  readonly linear: nn.Linear;
  readonly norm: nn.LayerNorm;
  constructor(featureDim: number, dModel: number, o: TensorOptions) {
    super();
    this.linear = new nn.Linear(featureDim, dModel, o);
    this.norm = new nn.LayerNorm(dModel, 1e-5, o);
  }
  forward(x: Tensor): Tensor {
    return this.norm.forward(this.linear.forward(x));
  }
}

/** What the layers attend to: one [B, N, d_model] tensor per layer (the same one when shared). */
export type Memory = Tensor[];

export interface DecodeOptions {
  /** [B, T], 1 where the token is padding */
  keyPadding?: Tensor;
  /** incremental decoding: the tokens continue the cache's sequence, and their keys are appended */
  cache?: KVCache;
  /** also return the last layer's cross-attention weights, averaged over heads: [B, T, N] */
  returnAttention?: boolean;
}

export class Decoder extends nn.Module {
  readonly opts: DecoderOptions;
  readonly embed: nn.Embedding;
  readonly embedProj: nn.Linear | null;
  readonly embedNorm: nn.LayerNorm;
  readonly imageNorm: nn.LayerNorm;
  readonly imageProj: ImageProjection[];
  readonly layers: DecoderLayer[];
  readonly finalNorm: nn.LayerNorm | null;
  readonly imagePos: Tensor | null;
  /** untied: [V, d]; tied: d -> embedDim (null when they are equal), then the embedding table */
  readonly out: nn.Linear | null;
  readonly outBias: Tensor | null;

  constructor(opts: Partial<DecoderOptions> & { vocabSize: number }) {
    super();
    const c = this.opts = { ...DECODER_DEFAULTS, ...opts };
    const o = { device: c.device, dtype: c.dtype };
    if (c.dModel % c.heads) throw new Error(`decoder: d_model ${c.dModel} not divisible by ${c.heads} heads`);
    this.embed = new nn.Embedding(c.vocabSize, c.embedDim, o);
    this.embedProj = c.embedDim === c.dModel ? null : new nn.Linear(c.embedDim, c.dModel, o);
    this.embedNorm = new nn.LayerNorm(c.dModel, 1e-5, o);
    this.imageNorm = new nn.LayerNorm(c.featureDim, 1e-5, o);
    const projections = c.imageProjection === "shared" ? 1 : c.layers;
    this.imageProj = Array.from(
      { length: projections },
      () => new ImageProjection(c.featureDim, c.dModel, o),
    );
    const layer = { ...c, preNorm: c.norm === "pre" };
    this.layers = Array.from({ length: c.layers }, () => new DecoderLayer(layer, o));
    this.finalNorm = c.norm === "pre" ? new nn.LayerNorm(c.dModel, 1e-5, o) : null;
    this.imagePos = c.imagePositions
      ? this.param("image_pos", tidy(() => F.mul(randn([c.imagePositions!, c.dModel], o), 0.02)))
      : null;
    if (!c.tiedEmbeddings) {
      this.out = new nn.Linear(c.dModel, c.vocabSize, o);
      this.outBias = null;
    } else {
      this.out = c.embedDim === c.dModel ? null : new nn.Linear(c.dModel, c.embedDim, { ...o, bias: false });
      this.outBias = this.param("out_bias", zeros([c.vocabSize], o));
    }
  }

  override children(): [string, nn.Module][] {
    const named: [string, nn.Module | null][] = [
      ["embed", this.embed],
      ["embed_proj", this.embedProj],
      ["embed_norm", this.embedNorm],
      ["image_norm", this.imageNorm],
      ...this.imageProj.map((m, i): [string, nn.Module] => [`image_proj.${i}`, m]),
      ...this.layers.map((m, i): [string, nn.Module] => [`layers.${i}`, m]),
      ["final_norm", this.finalNorm],
      [this.opts.tiedEmbeddings ? "out_to_embed" : "out", this.out],
    ];
    return named.filter((e): e is [string, nn.Module] => e[1] !== null);
  }

  /** Image tokens [B, N, featureDim] -> what each layer attends to. */
  memory(features: Tensor): Memory {
    const { featureDim, layers } = this.opts;
    if (features.ndim !== 3 || features.shape[2] !== featureDim) {
      throw new Error(`decoder: image tokens should be [B, N, ${featureDim}], got [${features.shape}]`);
    }
    const normed = this.imageNorm.forward(features);
    if (this.imagePos && features.shape[1] !== this.imagePos.shape[0]) {
      throw new Error(
        `decoder: ${features.shape[1]} image tokens, position embeddings for ${this.imagePos.shape[0]}`,
      );
    }
    const projected = this.imageProj.map((p) => {
      const m = p.forward(normed);
      return this.imagePos ? F.add(m, this.imagePos) : m;
    });
    return Array.from({ length: layers }, (_, i) => projected[projected.length === 1 ? 0 : i]);
  }

  /** Token ids i32 [B, T] -> logits [B, T, V] (and optionally cross-attention weights). */
  decode(
    tokens: Tensor,
    memory: Memory,
    o: DecodeOptions = {},
  ): { logits: Tensor; attention: Tensor | null } {
    if (tokens.ndim !== 2 || tokens.dtype !== "i32") {
      throw new Error(`decoder: tokens should be i32 [B, T], got ${tokens.dtype} [${tokens.shape}]`);
    }
    const start = o.cache?.length ?? 0, T = tokens.shape[1];
    let x = this.#embed(tokens, start);
    let attention: Tensor | null = null;
    this.layers.forEach((layer, i) => {
      const kv = o.cache?.cross[i] ?? layer.crossAttn.keysValues(memory[i]);
      const cache = o.cache && { ...o.cache.self[i], position: start };
      const last = o.returnAttention && i === this.layers.length - 1;
      const r = layer.forward(x, kv, { keyPadding: o.keyPadding, cache, returnAttention: last });
      x = r.x;
      if (last) attention = r.attention;
    });
    if (o.cache) o.cache.length = start + T;
    if (this.finalNorm) x = this.finalNorm.forward(x);
    return { logits: this.#logits(x), attention };
  }

  forward(tokens: Tensor, memory: Memory, keyPadding?: Tensor): Tensor {
    return this.decode(tokens, memory, { keyPadding }).logits;
  }

  /** A cache for incremental decoding of `memory`'s rows, up to `maxLength` positions. */
  createCache(memory: Memory, maxLength: number): KVCache {
    return tidy(() =>
      noGrad(() => {
        const [R] = memory[0].shape, { heads, dModel } = this.opts;
        const o = { device: memory[0].device, dtype: memory[0].dtype };
        const self: KeysValues[] = this.layers.map(() => ({
          k: zeros([R, heads, maxLength, dModel / heads], o),
          v: zeros([R, heads, maxLength, dModel / heads], o),
        }));
        // Contiguous copies: the cache gathers rows of these when beams reorder.
        const cross = this.layers.map((l, i) => {
          const kv = l.crossAttn.keysValues(memory[i]);
          return { k: F.contiguous(kv.k), v: F.contiguous(kv.v) };
        });
        return new KVCache(self, cross);
      })
    );
  }

  #embed(tokens: Tensor, start: number): Tensor {
    const { dModel, dropout } = this.opts;
    let e = this.embed.forward(tokens);
    if (this.embedProj) e = this.embedProj.forward(e);
    e = F.add(F.mul(e, Math.sqrt(dModel)), positions(start, tokens.shape[1], dModel, e));
    return F.dropout(this.embedNorm.forward(e), dropout, this.training);
  }

  #logits(x: Tensor): Tensor {
    if (!this.opts.tiedEmbeddings) return this.out!.forward(x);
    const h = this.out ? this.out.forward(x) : x;
    return F.add(F.matmul(h, F.transpose(this.embed.weight)), this.outBias!);
  }
}

/** Sinusoidal position encodings for positions [start, start + T): [T, d] (Vaswani et al.). */
export function positions(start: number, T: number, d: number, like: Tensor): Tensor {
  const pe = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < d; i += 2) {
      const angle = (start + t) / Math.pow(10000, i / d);
      pe[t * d + i] = Math.sin(angle);
      if (i + 1 < d) pe[t * d + i + 1] = Math.cos(angle);
    }
  }
  return tensor(pe, [T, d], { device: like.device, dtype: like.dtype });
}
