// Adam (L2 penalty through the gradient) and AdamW (decoupled weight decay, Loshchilov & Hutter),
// one fused in-place kernel per parameter (kernels/adam.ts), following torch.optim's formulas.

import { adamWGSL } from "../../kernels/adam.ts";
import { f32Bits } from "../../kernels/common.ts";
import { full } from "../create.ts";
import { packed } from "../ops/movement.ts";
import { gpu } from "../storage.ts";
import type { Tensor } from "../tensor.ts";
import { type GroupSpec, Optimizer, type ParamGroup } from "./optimizer.ts";

export interface AdamGroup extends ParamGroup {
  betas: [number, number];
  eps: number;
}

export class Adam extends Optimizer<AdamGroup> {
  protected decoupled = false;

  constructor(
    params: Tensor[] | (GroupSpec & Partial<AdamGroup>)[],
    o: Partial<Omit<AdamGroup, "params">> = {},
  ) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...o });
  }

  #one: Tensor | null = null;

  protected update(
    p: Tensor,
    grad: Tensor,
    { lr, betas: [b1, b2], eps, weightDecay: wd }: AdamGroup,
    scale: Tensor | null,
  ): void {
    if (!p.isContiguous || p.offset !== 0) {
      throw new Error("Adam updates parameters in place: they must be contiguous");
    }
    const m = this.slot(p, "m"), v = this.slot(p, "v"), g = grad.isContiguous ? grad : packed(grad);
    const bc1 = 1 - b1 ** this.stepCount, bc2 = 1 - b2 ** this.stepCount;
    if (p.device === "cpu") {
      const P = p.storage.host!,
        G = g.storage.host!.subarray(g.offset),
        M = m.storage.host!,
        V = v.storage.host!;
      const k = scale ? scale.storage.host![scale.offset] : 1;
      for (let i = 0; i < P.length; i++) {
        const gi = this.decoupled ? G[i] * k : G[i] * k + wd * P[i];
        M[i] = b1 * M[i] + (1 - b1) * gi;
        V[i] = b2 * V[i] + (1 - b2) * gi * gi;
        if (this.decoupled) P[i] *= 1 - lr * wd;
        P[i] -= (lr / bc1) * M[i] / (Math.sqrt(V[i]) / Math.sqrt(bc2) + eps);
      }
    } else {
      gpu().run({
        name: "adam",
        code: adamWGSL(),
        params: [
          p.size,
          ...[lr, b1, b2, eps, wd, bc1, bc2].map(f32Bits),
          this.decoupled ? 1 : 0,
          g.offset,
          scale?.offset ?? 0,
        ],
        reads: [g.storage.binding, (scale ?? this.#unit(p)).storage.binding],
        writes: [p.storage.binding, m.storage.binding, v.storage.binding],
        threads: p.size,
      });
    }
    if (g !== grad) g.dispose();
  }

  /** The scale of 1 used when step() is given none. */
  #unit(p: Tensor): Tensor {
    return this.#one ??= full([1], 1, { device: p.device, dtype: p.dtype }).keep();
  }

  override dispose(): void {
    super.dispose();
    this.#one?.dispose();
    this.#one = null;
  }
}

export class AdamW extends Adam {
  protected override decoupled = true;

  constructor(
    params: Tensor[] | (GroupSpec & Partial<AdamGroup>)[],
    o: Partial<Omit<AdamGroup, "params">> = {},
  ) {
    super(params, { weightDecay: 0.01, ...o });
  }
}
