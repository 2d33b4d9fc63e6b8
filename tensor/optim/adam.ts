// Adam (L2 penalty through the gradient) and AdamW (decoupled weight decay, Loshchilov & Hutter),
// following torch.optim's formulas. The parameters, their gradients and both moments live in flat
// buffers (flat.ts), so a step is one gradient gather per 6 parameters and one fused update per
// bucket (kernels/adam.ts) however many parameters the model has; `gradNorm` reads the same
// packed gradients with one reduction per bucket.

import { ADAM_HEADER_WORDS, adamWGSL } from "../../kernels/adam.ts";
import { f32Bits } from "../../kernels/common.ts";
import { empty, full } from "../create.ts";
import { reduceKernel } from "../ops/reduce.ts";
import { gpu } from "../storage.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { clipFactor } from "./clip.ts";
import { FlatParams, type Segment } from "./flat.ts";
import { type GroupSpec, Optimizer, type ParamGroup } from "./optimizer.ts";

export interface AdamGroup extends ParamGroup {
  betas: [number, number];
  eps: number;
}

export type AdamOptions = Partial<Omit<AdamGroup, "params">> & {
  /** the most elements one flat buffer holds (default: what one binding may address) */
  bucketElements?: number;
};

export class Adam extends Optimizer<AdamGroup> {
  protected decoupled = false;
  #flat: FlatParams;
  /** this step's gradients, packed by gradNorm() or step(), whichever comes first */
  #packed: { grads: (Tensor | null)[]; segments: Segment[][] } | null = null;
  #one: Tensor | null = null;

  constructor(
    params: Tensor[] | (GroupSpec & Partial<AdamGroup>)[],
    { bucketElements, ...o }: AdamOptions = {},
  ) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, ...o });
    this.#flat = new FlatParams(this.groups.map((g) => g.params), ["m", "v"], bucketElements);
    for (const p of this.groups.flatMap((g) => g.params)) {
      this.state.set(p, { m: this.#flat.slot(p, "m"), v: this.#flat.slot(p, "v") });
    }
  }

  /** Packs the gradients, unless they are the very tensors packed last (gradNorm, then step). */
  #gradients(): Segment[][] {
    const grads = this.groups.flatMap((g) => g.params.map((p) => p.grad));
    if (!this.#packed || grads.some((g, i) => g !== this.#packed!.grads[i])) {
      this.#packed = { grads, segments: this.#flat.gather() };
    }
    return this.#packed.segments;
  }

  /**
   * The L2 norm of all gradients together and the clipping factor min(1, maxNorm / (norm + 1e-6))
   * (torch's clip_grad_norm_), as 0-d tensors the caller owns; pass `scale` to step({ gradScale }).
   * The packed gradients serve the step() that follows.
   */
  gradNorm(maxNorm: number): { norm: Tensor; scale: Tensor } {
    const segments = this.#gradients(), buckets = this.#flat.buckets;
    const first = buckets[0]?.grads;
    if (!first || segments.every((s) => s.length === 0)) {
      throw new Error("gradNorm: no parameter has a gradient");
    }
    const out = tidy(() => {
      // gaps and parameters without a gradient this step hold stale or zero values: sum segments only
      const parts = buckets.flatMap((b, i) =>
        segments[i].map((s) => b.grads.view([s.end - s.start], [1], s.start))
      );
      const squares = empty([parts.length], { device: first.device, dtype: first.dtype });
      parts.forEach((g, i) => reduceKernel("sumsq", g, [0], squares.view([1], [1], i)));
      return clipFactor(squares, maxNorm);
    });
    return { norm: out.norm.keep(), scale: out.scale.keep() };
  }

  step({ gradScale }: { gradScale?: Tensor } = {}): void {
    this.stepCount++;
    const segments = this.#gradients();
    this.#packed = null;
    const [b1, b2] = this.groups[0]?.betas ?? [0.9, 0.999];
    for (const g of this.groups) {
      if (g.betas[0] !== b1 || g.betas[1] !== b2 || g.eps !== this.groups[0].eps) {
        throw new Error("Adam: every parameter group must share betas and eps (one fused update)");
      }
    }
    const eps = this.groups[0]?.eps ?? 1e-8;
    const bc1 = 1 - b1 ** this.stepCount, bc2 = 1 - b2 ** this.stepCount;
    this.#flat.buckets.forEach((b, i) => {
      if (segments[i].length === 0) return;
      const { m, v } = b.slots;
      const scale = gradScale ?? this.#unit(b.params);
      if (b.params.device === "cpu") {
        const P = b.params.storage.host!, G = b.grads.storage.host!, M = m.storage.host!, V = v.storage.host!;
        const k = scale.storage.host![scale.offset];
        for (const { start, end, group } of segments[i]) {
          const { lr, weightDecay: wd } = this.groups[group];
          for (let j = start; j < end; j++) {
            const gj = this.decoupled ? G[j] * k : G[j] * k + wd * P[j];
            M[j] = b1 * M[j] + (1 - b1) * gj;
            V[j] = b2 * V[j] + (1 - b2) * gj * gj;
            if (this.decoupled) P[j] *= 1 - lr * wd;
            P[j] -= (lr / bc1) * M[j] / (Math.sqrt(V[j]) / Math.sqrt(bc2) + eps);
          }
        }
        return;
      }
      // one thread per vec4 (bucket sizes are multiples of 64)
      const header = [
        b.params.size / 4,
        this.decoupled ? 1 : 0,
        segments[i].length,
        ...[b1, b2, eps, bc1, bc2].map(f32Bits),
      ];
      const params = [...header, scale.offset];
      if (params.length !== ADAM_HEADER_WORDS) throw new Error("internal: adam params");
      for (const { start, end, group } of segments[i]) {
        const { lr, weightDecay } = this.groups[group];
        params.push(start, end, f32Bits(lr), f32Bits(weightDecay));
      }
      gpu().run({
        name: "adam",
        code: adamWGSL(),
        params,
        reads: [b.grads.storage.binding, scale.storage.binding],
        writes: [b.params.storage.binding, m.storage.binding, v.storage.binding],
        threads: b.params.size / 4,
      });
    });
  }

  /** The scale of 1 used when step() is given none. */
  #unit(like: Tensor): Tensor {
    return this.#one ??= full([1], 1, { device: like.device, dtype: like.dtype }).keep();
  }

  override dispose(): void {
    super.dispose();
    this.#flat.dispose();
    this.#one?.dispose();
    this.#one = null;
  }
}

export class AdamW extends Adam {
  protected override decoupled = true;

  constructor(
    params: Tensor[] | (GroupSpec & Partial<AdamGroup>)[],
    o: AdamOptions = {},
  ) {
    super(params, { weightDecay: 0.01, ...o });
  }
}
