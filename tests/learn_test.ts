// Training works end to end on WebGPU: an MLP learns XOR, a CNN (conv, batchnorm, pooling)
// learns to tell bar orientations and positions apart, both on held-out data.

import assert from "node:assert";
import { device, F, manualSeed, noGrad, optim, tidy } from "../tensor/mod.ts";
import { accuracy, asTensors, barImages, MLP, SmallCNN, xorPoints } from "./helpers/tasks.ts";

const gpu = device() === "webgpu";

Deno.test({ name: "an MLP learns XOR on WebGPU (held-out accuracy >= 0.95)", ignore: !gpu }, async () => {
  manualSeed(1);
  const model = new MLP(), opt = new optim.AdamW(model.parameters(), { lr: 0.02, weightDecay: 0 });
  const train = asTensors(xorPoints(256, 11), [256, 2]), test = xorPoints(500, 12);
  for (let step = 0; step < 300; step++) {
    tidy(() => F.crossEntropy(model.forward(train.x), train.y).backward());
    opt.step();
    opt.zeroGrad();
  }
  const logits = tidy(() => noGrad(() => model.forward(asTensors(test, [500, 2]).x)));
  const a = await accuracy(logits, test.y);
  assert(a >= 0.95, `held-out accuracy ${a}`);
});

Deno.test(
  { name: "a CNN learns bar classes on WebGPU (held-out accuracy >= 0.9)", ignore: !gpu },
  async () => {
    manualSeed(2);
    const model = new SmallCNN(), opt = new optim.AdamW(model.parameters(), { lr: 0.01, weightDecay: 0.01 });
    for (let step = 0; step < 120; step++) {
      tidy(() => {
        const b = asTensors(barImages(32, 100 + step), [32, 1, 10, 10]);
        F.crossEntropy(model.forward(b.x), b.y).backward();
      });
      opt.step();
      opt.zeroGrad();
    }
    model.eval();
    const test = barImages(200, 7);
    const logits = tidy(() => noGrad(() => model.forward(asTensors(test, [200, 1, 10, 10]).x)));
    const a = await accuracy(logits, test.y);
    assert(a >= 0.9, `held-out accuracy ${a}`);
  },
);
