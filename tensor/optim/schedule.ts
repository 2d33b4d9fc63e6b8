// Learning-rate schedules as factors of each group's base lr, indexed by the step about to be
// taken (t = 1, 2, ...).

import type { Optimizer } from "./optimizer.ts";

export type Schedule = (t: number) => number;

/** Linear warmup to 1 over `warmup` steps, then 1/sqrt decay: t/w for t <= w, else sqrt(w/t). */
export function warmupInverseSqrt(warmup: number): Schedule {
  return (t) => (t <= warmup ? t / warmup : Math.sqrt(warmup / t));
}

/** Linear warmup to 1 over `warmup` steps, then 1: a run's cooldown (below) is its only decay. */
export function warmupConstant(warmup: number): Schedule {
  return (t) => Math.min(1, t / Math.max(1, warmup));
}

/** Linear warmup, then half a cosine from 1 down to `minFactor` at step `total`. */
export function cosine(total: number, { warmup = 0, minFactor = 0 } = {}): Schedule {
  return (t) => {
    if (t <= warmup) return t / Math.max(1, warmup);
    const progress = Math.min(1, (t - warmup) / Math.max(1, total - warmup));
    return minFactor + (1 - minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}

/**
 * The factor of a linear cooldown to 0 over the last `share` of a run (0: none), given how far the
 * run is (0..1). A run stopped by a time budget does not know its step count in advance, so the
 * trainer passes max(step / steps, elapsed / budget).
 */
export function cooldown(progress: number, share: number): number {
  if (share <= 0) return 1;
  return Math.min(1, Math.max(0, (1 - progress) / share));
}

/** Sets each group's lr to base * schedule(t) before step t; call `step()` after each optimizer step. */
export class LRScheduler {
  readonly baseLRs: number[];
  constructor(readonly optimizer: Optimizer, readonly schedule: Schedule) {
    this.baseLRs = optimizer.groups.map((g) => g.lr);
    this.#apply();
  }
  step(): void {
    this.#apply();
  }
  #apply(): void {
    const f = this.schedule(this.optimizer.stepCount + 1);
    this.optimizer.groups.forEach((g, i) => (g.lr = this.baseLRs[i] * f));
  }
}
