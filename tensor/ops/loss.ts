// Cross-entropy over the last dim of the logits, with PyTorch's semantics for ignored targets and
// label smoothing: loss_i = (1 - e) * -log p(t_i) + e * mean_c(-log p(c)), 0 where t_i is ignored;
// "mean" divides by the number of targets not ignored.

import { Tensor } from "../tensor.ts";
import { add, div, mul, neg } from "./elementwise.ts";
import { indexMask, pick } from "./index.ts";
import { reshape } from "./movement.ts";
import { mean, sum } from "./reduce.ts";
import { register } from "./registry.ts";
import { logSoftmax } from "./rows.ts";

register("crossEntropy");

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: "mean" | "sum" | "none";
}

/** logits [..., C], targets i32 [...] (same leading shape). */
export function crossEntropy(logits: Tensor, targets: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const { ignoreIndex = -100, labelSmoothing: e = 0, reduction = "mean" } = o;
  const C = logits.shape.at(-1)!;
  if (targets.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new Error(
      `crossEntropy: targets [${targets.shape}] do not match logits [${logits.shape}] without the class dim`,
    );
  }
  const lp = logSoftmax(reshape(logits, [-1, C]));
  const t = reshape(targets, [-1]);
  let loss = neg(pick(lp, t, ignoreIndex));
  const valid = indexMask(t, ignoreIndex, logits);
  if (e > 0) loss = add(mul(loss, 1 - e), mul(neg(mean(lp, -1)), mul(valid, e)));
  if (reduction === "none") return reshape(loss, targets.shape);
  return reduction === "sum" ? sum(loss) : div(sum(loss), sum(valid));
}
