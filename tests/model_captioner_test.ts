// The captioner end to end, small: a narrow ResNet-18 encoder under the fine-tuning policy and a
// small decoder. Gradients reach only the trainable parts, frozen batchnorm statistics stay put,
// a few AdamW steps fit one batch, and every decoding strategy captions every image.

import assert from "node:assert";
import { manualSeed, optim, tensor, tidy } from "../tensor/mod.ts";
import { memory as gpuMemory } from "../tensor/storage.ts";
import { Captioner } from "../model/mod.ts";
import { relError } from "./helpers/check.ts";

const V = 20;
function tiny(): Captioner {
  manualSeed(3);
  return new Captioner({
    vocabSize: V,
    encoder: { depth: 18, widths: [4, 8, 8, 16] },
    decoder: { embedDim: 16, dModel: 16, layers: 1, heads: 2, ffnDim: 32, dropout: 0 },
    maxLength: 8,
  });
}
const images = () =>
  tensor(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.01)), [2, 3, 32, 32]);
const captions = [[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0]];

Deno.test("captioner: gradients reach the decoder and layer3/layer4 only; frozen batchnorm stays put", async () => {
  const c = tiny().train();
  const x = images();
  const before = await c.encoder!.layer4.layers[0].namedBuffers()[0][1].toArray();
  const loss = tidy(() => {
    const l = c.loss(x, captions);
    l.backward();
    return l;
  });
  assert(Number.isFinite(await loss.item()));
  for (const [name, p] of c.namedParameters()) {
    const trains = !/^encoder\.(conv1|bn1|layer1|layer2)\./.test(name);
    assert.equal(p.requiresGrad, trains, name);
    assert.equal(p.grad !== null, trains, `${name} gradient`);
  }
  const after = await c.encoder!.layer4.layers[0].namedBuffers()[0][1].toArray();
  assert.deepEqual(after, before, "running statistics changed under frozen batchnorm");
  for (const t of [loss, x]) t.dispose();
  c.dispose();
});

Deno.test("captioner: AdamW on one batch lowers the loss", async () => {
  const c = tiny().train();
  const x = images();
  const opt = new optim.AdamW(c.trainableParameters(), { lr: 3e-3 });
  const losses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const l = tidy(() => {
      const l = c.loss(x, captions);
      l.backward();
      return l;
    });
    opt.step();
    c.zeroGrad();
    losses.push(await l.item());
    l.dispose();
  }
  assert(losses.at(-1)! < losses[0] - 0.1, `loss ${losses.map((l) => l.toFixed(3)).join(" -> ")}`);
  x.dispose();
  c.dispose();
});

Deno.test("captioner: parameters moved into AdamW's flat buffers give the same loss and gradients", async () => {
  const c = tiny().train();
  const x = images();
  const run = async () => {
    const l = tidy(() => {
      const l = c.loss(x, captions);
      l.backward();
      return l;
    });
    const out = [
      [await l.item()],
      ...await Promise.all(c.trainableParameters().map((p) => p.grad!.toArray())),
    ];
    l.dispose();
    c.zeroGrad();
    return out;
  };
  const before = await run();
  const opt = new optim.AdamW(c.trainableParameters()); // every parameter becomes a view at an aligned offset
  assert(c.trainableParameters().some((p) => p.offset > 0));
  // (the tuner may pick other kernels the second time: equal to rounding, not bit for bit)
  (await run()).forEach((a, i) =>
    assert(relError(a, before[i]) <= 1e-5, `value ${i}: ${relError(a, before[i])}`)
  );
  opt.dispose();
  x.dispose();
  c.dispose();
});

Deno.test("captioner: generate with beam, greedy and sampling; memory flat; bad config refused", async () => {
  const c = tiny();
  const x = images();
  await c.generate(x);
  const live = gpuMemory().liveBytes;
  const beam = await c.generate(x, { beamSize: 3, numReturn: 2 });
  const greedy = await c.generate(x, { strategy: "greedy" });
  const sampled = await c.generate(x, { strategy: "sample", seed: 1, topP: 0.9 });
  for (const caps of [beam, greedy, sampled]) {
    assert.equal(caps.length, 2);
    for (const cap of caps) {
      assert(cap.tokens.length <= 8 && cap.tokens.every((t) => t >= 0 && t < V && t !== 3));
    }
  }
  assert.equal(beam[0].alternatives!.length, 2);
  assert.deepEqual(beam[0].alternatives![0].tokens, beam[0].tokens);
  assert.equal(gpuMemory().liveBytes, live, "live GPU bytes grew while generating");
  assert(c.training, "generate restores the training mode");
  x.dispose();
  c.dispose();
  assert.throws(
    () => new Captioner({ vocabSize: 3, eosId: 3, encoder: null }),
    /eosId 3 outside the vocabulary/,
  );
});
