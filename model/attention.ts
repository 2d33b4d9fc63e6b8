// Scaled dot-product attention: the one place the decoder's attention math lives. The fused
// flash-style kernel (F.attention) runs it whenever nothing needs the weights themselves; the
// composition from tensor ops below serves attention-weight dropout and `returnWeights`.

import { F, type Tensor, tensor } from "../tensor/mod.ts";

/**
 * Added to the scores of keys a query must not see. Finite rather than -Infinity so a row with
 * every key masked gives a uniform distribution instead of NaNs; exp(-1e9 - max) is exactly 0 in
 * f32, so rows with any visible key are unaffected.
 */
export const MASKED = -1e9;

export interface AttentionOptions {
  /**
   * Query i may only see keys up to its own position. Queries are the last Tq of the Tk positions,
   * so the same rule holds when a KV cache supplies the earlier keys.
   */
  causal?: boolean;
  /** [B, Tk], 1 where the key is padding (never attended to), 0 where it is a real token. */
  keyPadding?: Tensor;
  /** Dropout on the attention weights; applied only when `training`. */
  dropout?: number;
  training?: boolean;
  /** Also return the attention weights (after masking, before dropout). */
  returnWeights?: boolean;
}

export interface AttentionResult {
  /** [B, H, Tq, dh] */
  out: Tensor;
  /** [B, H, Tq, Tk] when asked for, else null */
  weights: Tensor | null;
}

/** q [B, H, Tq, dh], k and v [B, H, Tk, dh] (views with any strides are read in place). */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): AttentionResult {
  const [B, , Tq, dh] = q.shape, Tk = k.shape[2];
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4 || k.shape[3] !== dh || v.shape[2] !== Tk) {
    throw new Error(`attention: q [${q.shape}], k [${k.shape}], v [${v.shape}] do not agree`);
  }
  if (o.causal && Tq > Tk) {
    throw new Error(`attention: ${Tq} queries but only ${Tk} keys under a causal mask`);
  }
  if (!o.returnWeights && !((o.dropout ?? 0) > 0 && o.training)) {
    return { out: F.attention(q, k, v, { causal: o.causal, keyPadding: o.keyPadding }), weights: null };
  }
  // Scaling q first (as PyTorch does) keeps the scores' magnitude, and rounding, like the reference.
  let scores = F.matmul(F.mul(q, 1 / Math.sqrt(dh)), F.transpose(k));
  if (o.causal) scores = F.add(scores, causalBias(Tq, Tk, q));
  if (o.keyPadding) {
    if (o.keyPadding.shape.join() !== `${B},${Tk}`) {
      throw new Error(`attention: keyPadding [${o.keyPadding.shape}] should be [${B}, ${Tk}]`);
    }
    scores = F.add(scores, F.mul(F.reshape(o.keyPadding, [B, 1, 1, Tk]), MASKED));
  }
  const weights = F.softmax(scores, -1);
  const dropped = F.dropout(weights, o.dropout ?? 0, o.training ?? false);
  return { out: F.matmul(dropped, v), weights: o.returnWeights ? weights : null };
}

/** [Tq, Tk] additive mask: query i (absolute position Tk - Tq + i) sees keys j <= that position. */
export function causalBias(Tq: number, Tk: number, like: Tensor): Tensor {
  if (Tq > Tk) throw new Error(`attention: ${Tq} queries but only ${Tk} keys under a causal mask`);
  const bias = new Float64Array(Tq * Tk), shift = Tk - Tq;
  for (let i = 0; i < Tq; i++) for (let j = i + shift + 1; j < Tk; j++) bias[i * Tk + j] = MASKED;
  return tensor(bias, [Tq, Tk], { device: like.device, dtype: like.dtype });
}
