// Cross-entropy over the last dim of the logits, with PyTorch's semantics for ignored targets and
// label smoothing: loss_i = (1 - e) * -log p(t_i) + e * mean_c(-log p(c)), 0 where t_i is ignored;
// "mean" divides by the number of targets not ignored. One fused kernel per direction
// (kernels/cross_entropy.ts): the [N, C] log-probabilities are never stored.

import { f32Bits } from "../../kernels/common.ts";
import {
  crossEntropyGradWGSL,
  crossEntropyRowWGSL,
  crossEntropyWGSL,
  ROW_PER_THREAD_MAX,
} from "../../kernels/cross_entropy.ts";
import { empty } from "../create.ts";
import { gpu } from "../storage.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { div } from "./elementwise.ts";
import { checkRange, indexMask } from "./index.ts";
import { packed, reshape } from "./movement.ts";
import { sum } from "./reduce.ts";
import { register } from "./registry.ts";

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
  checkRange(targets, C, "crossEntropy", ignoreIndex);
  const x = packed(logits), t = packed(targets), N = x.size / C;
  const loss = empty([N], { device: x.device, dtype: x.dtype }),
    lse = empty([N], { device: x.device, dtype: x.dtype });
  const params = [N, C, ignoreIndex >>> 0, f32Bits(e)];
  if (x.device === "cpu") {
    const X = x.storage.host!, T = t.storage.host!, L = loss.storage.host!, S = lse.storage.host!;
    for (let n = 0; n < N; n++) {
      let m = -Infinity, s = 0, total = 0;
      for (let c = 0; c < C; c++) m = Math.max(m, X[n * C + c]);
      for (let c = 0; c < C; c++) s += Math.exp(X[n * C + c] - m), total += X[n * C + c];
      S[n] = m + Math.log(s);
      L[n] = T[n] === ignoreIndex ? 0 : S[n] - (1 - e) * X[n * C + T[n]] - (e * total) / C;
    }
  } else {
    const io = {
      params,
      reads: [x.storage.binding, t.storage.binding],
      writes: [loss.storage.binding, lse.storage.binding],
    };
    // a row per thread while rows are short: no barriers (kernels/cross_entropy.ts)
    if (C <= ROW_PER_THREAD_MAX) {
      gpu().run({ name: "cross_entropy_row", code: crossEntropyRowWGSL(), ...io, threads: N });
    } else {
      const rows = Math.min(N, 65535);
      gpu().run({
        name: "cross_entropy",
        code: crossEntropyWGSL(),
        ...io,
        workgroups: [rows, Math.ceil(N / rows), 1],
      });
    }
  }
  const perRow = fromOp("crossEntropy", loss, [logits], (g) => {
    const gc = packed(g), dx = empty([N, C], { device: x.device, dtype: x.dtype });
    if (x.device === "cpu") {
      const X = x.storage.host!,
        T = t.storage.host!,
        S = lse.storage.host!,
        G = gc.storage.host!,
        D = dx.storage.host!;
      for (let n = 0; n < N; n++) {
        if (T[n] === ignoreIndex) continue;
        for (let c = 0; c < C; c++) {
          D[n * C + c] = G[n] * (Math.exp(X[n * C + c] - S[n]) - (c === T[n] ? 1 - e : 0) - e / C);
        }
      }
    } else {
      gpu().run({
        name: "cross_entropy_grad",
        code: crossEntropyGradWGSL(),
        params,
        reads: [x.storage.binding, t.storage.binding, lse.storage.binding, gc.storage.binding],
        writes: [dx.storage.binding],
        threads: N * C,
      });
    }
    return [reshape(dx, logits.shape)];
  });
  if (reduction === "none") return reshape(perRow, targets.shape);
  return reduction === "sum" ? sum(perRow) : div(sum(perRow), sum(indexMask(t, ignoreIndex, logits)));
}
