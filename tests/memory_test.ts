// GPU memory is owned: a training loop's live bytes stay flat, and tidy/dispose release what they
// should (and nothing that is still in use).

import assert from "node:assert";
import { device, F, manualSeed, memory, optim, tensor, tidy } from "../tensor/mod.ts";
import { asTensors, barImages, SmallCNN } from "./helpers/tasks.ts";

const gpu = device() === "webgpu";

Deno.test({
  name: "200 CNN training steps on WebGPU: live bytes after step 20 equal those after step 200",
  ignore: !gpu,
}, async () => {
  manualSeed(3);
  const model = new SmallCNN(), opt = new optim.AdamW(model.parameters(), { lr: 1e-3 });
  const data = barImages(16, 5);
  const live: number[] = [];
  for (let step = 1; step <= 200; step++) {
    const loss = tidy(() => {
      const b = asTensors(data, [16, 1, 10, 10]);
      const loss = F.crossEntropy(model.forward(b.x), b.y);
      loss.backward();
      return loss;
    });
    optim.clipGradNorm(model.parameters(), 1).dispose();
    opt.step();
    opt.zeroGrad();
    if (step % 50 === 0) assert(Number.isFinite(await loss.item()));
    loss.dispose();
    live.push(memory().liveBytes);
  }
  assert(live[19] > 0);
  assert.equal(live[199], live[19], `live bytes grew from ${live[19]} (step 20) to ${live[199]} (step 200)`);
  model.dispose();
  opt.dispose();
});

Deno.test(
  { name: "tidy frees intermediates, keeps what it returns; dispose is idempotent", ignore: !gpu },
  async () => {
    const before = memory().liveBytes;
    const a = tensor([1, 2, 3], [3]);
    const kept = tidy(() => F.mul(F.add(a, 1), F.exp(a)));
    assert.equal(
      memory().liveBytes - before,
      2 * 256,
      "only a and the result stay live (256-byte size class)",
    );
    assert.deepEqual([...await kept.toArray()].map((v) => +v.toFixed(4)), [5.4366, 22.1672, 80.3421]);
    kept.dispose();
    kept.dispose();
    a.dispose();
    assert.equal(memory().liveBytes, before);
    assert.throws(() => F.add(kept, 1), /used after dispose/);
  },
);

Deno.test(
  { name: "views share storage: disposing the base keeps a view's data alive", ignore: !gpu },
  async () => {
    const base = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const view = F.transpose(base);
    base.dispose();
    assert.deepEqual([...await view.toArray()], [1, 4, 2, 5, 3, 6]);
    view.dispose();
  },
);
