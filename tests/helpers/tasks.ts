// Small generated learning tasks and the models that solve them (tests/learn_test.ts, memory_test.ts).

import { F, nn, type Tensor, tensor } from "../../tensor/mod.ts";
import { normalAt, uniformAt } from "../../tensor/random.ts";

/** Points in [-1, 1]^2 labelled by XOR of the signs of their coordinates. */
export function xorPoints(n: number, key: number): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(2 * n), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = 2 * uniformAt(key, 2 * i) - 1;
    x[2 * i + 1] = 2 * uniformAt(key, 2 * i + 1) - 1;
    y[i] = (x[2 * i] > 0) !== (x[2 * i + 1] > 0) ? 1 : 0;
  }
  return { x, y };
}

/**
 * 1x10x10 noisy images holding one bar: class 0-1 horizontal in the top / bottom half, 2-3 vertical
 * in the left / right half. Position within the half, and the noise, vary.
 */
export function barImages(n: number, key: number): { x: Float32Array; y: Int32Array } {
  const S = 10, x = new Float32Array(n * S * S), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = Math.floor(uniformAt(key, 3 * i) * 4),
      at = Math.floor(uniformAt(key, 3 * i + 1) * 4) + (cls % 2) * 5;
    y[i] = cls;
    for (let p = 0; p < S * S; p++) {
      const [r, c] = [Math.floor(p / S), p % S];
      const on = cls < 2 ? r === at : c === at;
      x[i * S * S + p] = (on ? 1 : 0) + 0.3 * normalAt(key + 1, i * S * S + p);
    }
  }
  return { x, y };
}

export class MLP extends nn.Module {
  l1 = new nn.Linear(2, 32);
  l2 = new nn.Linear(32, 32);
  l3 = new nn.Linear(32, 2);
  forward(x: Tensor): Tensor {
    return this.l3.forward(F.tanh(this.l2.forward(F.tanh(this.l1.forward(x)))));
  }
}

export class SmallCNN extends nn.Module {
  features = new nn.Sequential(
    new nn.Conv2d(1, 8, 3, { padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.Conv2d(8, 16, 3, { padding: 1, stride: 2 }),
    new nn.ReLU(),
  );
  head = new nn.Linear(16, 4);
  forward(x: Tensor): Tensor {
    const h = F.adaptiveAvgPool2d(F.maxPool2d(this.features.forward(x), 2), 1);
    return this.head.forward(F.reshape(h, [x.shape[0], 16]));
  }
}

/** Share of rows whose argmax equals the label. */
export async function accuracy(logits: Tensor, labels: Int32Array): Promise<number> {
  const v = await logits.toArray(), C = logits.shape[1];
  let hit = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (v[i * C + c] > v[i * C + best]) best = c;
    if (best === labels[i]) hit++;
  }
  return hit / labels.length;
}

export const asTensors = (d: { x: Float32Array; y: Int32Array }, shape: number[]) => ({
  x: tensor(d.x, shape),
  y: tensor(d.y, [d.y.length]),
});
