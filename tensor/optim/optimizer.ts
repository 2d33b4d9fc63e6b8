// Optimizer base: parameter groups with their own hyperparameters (lr, weight decay, ...), and
// per-parameter state tensors the optimizer owns.

import { zeros } from "../create.ts";
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

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (const g of this.groups) {
      for (const p of g.params) if (p.grad) this.update(p, p.grad, g);
    }
  }

  protected abstract update(p: Tensor, grad: Tensor, group: G): void;

  /** A named state tensor of `p` (zeros on first use), owned by the optimizer. */
  protected slot(p: Tensor, name: string): Tensor {
    const s = this.state.get(p) ?? {};
    this.state.set(p, s);
    return s[name] ??= zeros(p.shape, { device: p.device, dtype: p.dtype }).keep();
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
