// The captioning loss: cross-entropy with label smoothing that ignores padding, plus the seed's EOS
// suppression term, beta x the mean probability of EOS over the first `eosWindow` target positions,
// counting only real (non-pad) ones (the seed forgot that last part; shared/seed/FACTS.md).

import { F, type Tensor } from "../tensor/mod.ts";

export interface LossOptions {
  padId: number;
  eosId: number;
  labelSmoothing: number;
  eosBeta: number;
  eosWindow: number;
}

export const LOSS_DEFAULTS = { labelSmoothing: 0.1, eosBeta: 1, eosWindow: 15 };

export interface LossTerms {
  /** ce + eosBeta * eos (scalar) */
  loss: Tensor;
  /** label-smoothed cross-entropy over the non-pad targets (scalar) */
  ce: Tensor;
  /** mean P(EOS) over the real targets among the first eosWindow positions (scalar) */
  eos: Tensor;
}

/** logits [B, T, V] predicting targets i32 [B, T]. */
export function captionLoss(logits: Tensor, targets: Tensor, o: LossOptions): LossTerms {
  const ce = F.crossEntropy(logits, targets, { ignoreIndex: o.padId, labelSmoothing: o.labelSmoothing });
  const W = Math.min(o.eosWindow, targets.shape[1]);
  let eos: Tensor;
  if (W <= 0) eos = F.mul(F.sum(logits), 0);
  else {
    const window = F.slice(logits, 1, 0, W);
    const pEos = F.reshape(F.slice(F.softmax(window, -1), -1, o.eosId, o.eosId + 1), [-1, W]);
    const real = F.indexMask(F.slice(targets, 1, 0, W), o.padId, logits);
    // max(count, 1): a batch with no real target in the window contributes 0, not NaN.
    eos = F.div(F.sum(F.mul(pEos, real)), F.maximum(F.sum(real), 1));
  }
  return { loss: F.add(ce, F.mul(eos, o.eosBeta)), ce, eos };
}
