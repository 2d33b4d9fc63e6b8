// SGD with momentum and Nesterov momentum, and coupled (L2) weight decay, as torch.optim.SGD:
//   g += wd p;  buf = mu buf + (1 - dampening) g  (buf = g on the first step);
//   g = nesterov ? g + mu buf : buf;  p -= lr g

import { add, copyInto, mul, sub } from "../ops/elementwise.ts";
import { type Tensor, tidy } from "../tensor.ts";
import { type GroupSpec, Optimizer, type ParamGroup } from "./optimizer.ts";

export interface SGDGroup extends ParamGroup {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

export class SGD extends Optimizer<SGDGroup> {
  constructor(
    params: Tensor[] | (GroupSpec & Partial<SGDGroup>)[],
    o: Partial<Omit<SGDGroup, "params">> = {},
  ) {
    super(params, { lr: 1e-2, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...o });
  }

  step({ gradScale: scale }: { gradScale?: Tensor } = {}): void {
    this.stepCount++;
    for (const group of this.groups) {
      for (const p of group.params) if (p.grad) this.#update(p, p.grad, group, scale);
    }
  }

  #update(
    p: Tensor,
    grad: Tensor,
    { lr, momentum: mu, dampening, nesterov, weightDecay: wd }: SGDGroup,
    scale: Tensor | undefined,
  ): void {
    tidy(() => {
      const scaled = scale ? mul(grad, scale) : grad;
      let g = wd ? add(scaled, mul(p, wd)) : scaled;
      if (mu) {
        const first = !this.state.get(p)?.buf;
        const buf = this.slot(p, "buf");
        copyInto(buf, first ? g : add(mul(buf, mu), mul(g, 1 - dampening)));
        g = nesterov ? add(g, mul(buf, mu)) : buf;
      }
      copyInto(p, sub(p, mul(g, lr)));
    });
  }
}
