// Optimizer base: parameter groups with their own hyperparameters (lr, weight decay, ...), and
// per-parameter state tensors the optimizer owns.

import { zeros } from "../create.ts";
import { copyInto } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor.ts";

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  weightDecay: number;
}

export type GroupSpec = Partial<ParamGroup> & { params: Tensor[] };

export abstract class Optimizer<G extends ParamGroup = ParamGroup> {
  readonly groups: G[];
  /** Number of steps taken; bias corrections and schedules count from it. */
  stepCount = 0;
  protected state = new Map<Tensor, Record<string, Tensor>>();

  constructor(params: Tensor[] | GroupSpec[], defaults: Omit<G, "params">) {
    const specs: GroupSpec[] = params.length && "params" in params[0]
      ? (params as GroupSpec[])
      : [{ params: params as Tensor[] }];
    this.groups = specs.map((s) => ({ ...defaults, ...s }) as G);
    const seen = new Set<Tensor>();
    for (const p of this.groups.flatMap((g) => g.params)) {
      if (seen.has(p)) throw new Error("a parameter appears in more than one group");
      if (!p.requiresGrad) {
        throw new Error(`optimizer given a tensor of shape [${p.shape}] that does not require grad`);
      }
      seen.add(p);
    }
  }

  /**
   * Applies one update to every parameter that has a gradient, each gradient multiplied by
   * `gradScale` (a 1-element tensor, e.g. the clipping factor from `gradNorm`) when given.
   */
  abstract step(opts?: { gradScale?: Tensor }): void;

  /** A named state tensor of `p` (zeros on first use), owned by the optimizer. */
  protected slot(p: Tensor, name: string): Tensor {
    const s = this.state.get(p) ?? {};
    this.state.set(p, s);
    return s[name] ??= zeros(p.shape, { device: p.device, dtype: p.dtype }).keep();
  }

  /**
   * Everything needed to resume: step count, each group's hyperparameters, and the state tensors
   * named "<group>.<index in group>.<slot>" (the tensors themselves; save them, don't mutate).
   */
  stateDict(): { stepCount: number; groups: Record<string, unknown>[]; tensors: Map<string, Tensor> } {
    const tensors = new Map<string, Tensor>();
    this.groups.forEach((g, gi) =>
      g.params.forEach((p, pi) => {
        for (const [name, t] of Object.entries(this.state.get(p) ?? {})) {
          tensors.set(`${gi}.${pi}.${name}`, t);
        }
      })
    );
    const groups = this.groups.map(({ params: _, ...hyper }) => hyper);
    return { stepCount: this.stepCount, groups, tensors };
  }

  /** Restores what stateDict() returned (the parameters must be the same, in the same groups). */
  loadStateDict(
    s: { stepCount: number; groups: Record<string, unknown>[]; tensors: Map<string, Tensor> },
  ): void {
    if (s.groups.length !== this.groups.length) {
      throw new Error(
        `optimizer state has ${s.groups.length} parameter groups, this optimizer ${this.groups.length}`,
      );
    }
    this.stepCount = s.stepCount;
    this.groups.forEach((g, gi) => Object.assign(g, s.groups[gi], { params: g.params }));
    for (const [key, t] of s.tensors) {
      const [gi, pi, name] = key.split(".");
      const p = this.groups[+gi]?.params[+pi];
      if (!p || p.shape.join() !== t.shape.join()) {
        throw new Error(`optimizer state ${key} [${t.shape}] does not match a parameter`);
      }
      copyInto(this.slot(p, name), t);
    }
  }

  zeroGrad(): void {
    for (const p of this.groups.flatMap((g) => g.params)) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
  }
}
