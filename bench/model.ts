/**
 * Model throughput on this machine's adapter: ResNet-50 / ResNet-101 forward at 224x224 (images/s),
 * the seed's decoder (d_model 512, 10 layers, V 15,000) generating tokens with and without the
 * KV cache (tokens/s, batch 5 as a beam), and a whole training step of the seed captioner
 * (ResNet-101 + that decoder, loss, backward, clipped AdamW; images/s). Random weights: speed does
 * not depend on them. Writes bench/results/model.json.
 *
 *   deno run -A bench/model.ts
 */
import { device, gpu, noGrad, optim, randn, type Tensor, tensor, tidy } from "../tensor/mod.ts";
import { Captioner, Decoder, resnet } from "../model/mod.ts";

const RESULTS = new URL("./results/model.json", import.meta.url);

/** Waits for the device to finish (reading one value back forces it). */
async function settle(t: Tensor): Promise<void> {
  await t.slice(0, 0, 1).toArray();
}

async function resnetImagesPerSecond(depth: 50 | 101, batch: number): Promise<number> {
  const net = resnet(depth).eval();
  // Compile every pipeline on a small input first: kernels are shape-independent.
  const warm = tidy(() => noGrad(() => net.forward(randn([1, 3, 64, 64]))));
  await settle(warm);
  warm.dispose();
  // Best of two: the first 224 pass also grows the buffer pool.
  const x = randn([batch, 3, 224, 224]);
  let seconds = Infinity;
  for (let run = 0; run < 2; run++) {
    const start = performance.now();
    const y = tidy(() => noGrad(() => net.forward(x)));
    await settle(y);
    seconds = Math.min(seconds, (performance.now() - start) / 1000);
    y.dispose();
  }
  x.dispose();
  net.dispose();
  return batch / seconds;
}

/** Tokens/s generating `steps` tokens for `rows` hypotheses, reading each step's logits back. */
async function decoderTokensPerSecond(
  dec: Decoder,
  cached: boolean,
  rows: number,
  steps: number,
): Promise<number> {
  const memory = tidy(() => noGrad(() => dec.memory(randn([rows, 49, 2048]))));
  const ids = (t: number) =>
    tensor(Int32Array.from({ length: rows * t }, (_, i) => 4 + (i % 50)), [rows, t], { dtype: "i32" });
  const cache = cached ? dec.createCache(memory, steps) : null;
  const start = performance.now();
  for (let t = 1; t <= steps; t++) {
    const logits = tidy(() =>
      noGrad(() => {
        const tokens = ids(cached ? 1 : t);
        return dec.decode(tokens, memory, { cache: cache ?? undefined }).logits.slice(1, -1);
      })
    );
    await logits.toArray();
    logits.dispose();
  }
  const seconds = (performance.now() - start) / 1000;
  cache?.dispose();
  for (const m of new Set(memory)) m.dispose();
  return (rows * steps) / seconds;
}

/**
 * Images/s of the seed captioner's training step (the seed's optimiser groups, clipping inside the
 * update), `captions` tokens long, after one untimed step that compiles and tunes the kernels.
 */
async function trainStepImagesPerSecond(batch: number, captions: number, steps: number): Promise<number> {
  const model = new Captioner({ vocabSize: 15000 });
  const opt = new optim.AdamW([
    { params: model.encoder!.parameters().filter((p) => p.requiresGrad), lr: 1e-4 },
    { params: model.decoder.parameters(), lr: 1e-3 },
  ], { weightDecay: 0.05 });
  const images = randn([batch, 3, 224, 224]);
  const ids = tensor(Int32Array.from({ length: batch * captions }, (_, i) => 4 + (i * 7919) % 14000), [
    batch,
    captions,
  ], { dtype: "i32" });
  const step = async () => {
    const loss = tidy(() => {
      const l = model.lossTerms(images, ids).loss;
      l.backward();
      return l;
    });
    const { scale } = opt.gradNorm(1.0);
    opt.step({ gradScale: scale });
    opt.zeroGrad();
    scale.dispose();
    await loss.item();
    loss.dispose();
  };
  await step();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const seconds = (performance.now() - start) / 1000;
  for (const t of [images, ids]) t.dispose();
  opt.dispose();
  model.dispose();
  return (batch * steps) / seconds;
}

export async function benchModel() {
  const adapter = device() === "webgpu" ? gpu().adapter.description : "cpu (no WebGPU adapter)";
  console.log(`model bench on ${adapter}`);
  const resnet50 = await resnetImagesPerSecond(50, 1);
  console.log(`  ResNet-50 forward, 224x224, batch 1: ${resnet50.toFixed(3)} images/s`);
  const resnet101 = await resnetImagesPerSecond(101, 1);
  console.log(`  ResNet-101 forward, 224x224, batch 1: ${resnet101.toFixed(3)} images/s`);

  const dec = new Decoder({ vocabSize: 15000 }).eval();
  const rows = 5, steps = 16;
  await decoderTokensPerSecond(dec, true, rows, 2); // compile the pipelines
  const withCache = await decoderTokensPerSecond(dec, true, rows, steps);
  const withoutCache = await decoderTokensPerSecond(dec, false, rows, steps);
  dec.dispose();
  console.log(
    `  decoder (seed config, ${rows} rows x ${steps} tokens): ${
      withCache.toFixed(1)
    } tokens/s with KV cache, ` +
      `${withoutCache.toFixed(1)} without (recomputing the prefix)`,
  );

  // a CPU adapter takes minutes per image for this step: one small batch there
  const cpuAdapter = device() !== "webgpu" || gpu().adapter.fallback;
  const [trainBatch, trainSteps, captionTokens] = cpuAdapter ? [1, 1, 20] : [32, 3, 20];
  const trainStep = await trainStepImagesPerSecond(trainBatch, captionTokens, trainSteps);
  console.log(
    `  seed captioner training step (ResNet-101 224x224 + decoder, ${captionTokens} tokens, batch ${trainBatch}): ${
      trainStep.toFixed(3)
    } images/s`,
  );

  const results = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    adapter,
    resnet: {
      input: "224x224, batch 1, eval, random weights, best of 2",
      resnet50ImagesPerSecond: Number(resnet50.toFixed(4)),
      resnet101ImagesPerSecond: Number(resnet101.toFixed(4)),
    },
    decoder: {
      config: "d_model 512, 10 layers, 8 heads, FFN 2048, vocab 15000, 49 image tokens",
      rows,
      tokens: steps,
      tokensPerSecondWithCache: Number(withCache.toFixed(2)),
      tokensPerSecondWithoutCache: Number(withoutCache.toFixed(2)),
      speedup: Number((withCache / withoutCache).toFixed(2)),
    },
    trainStep: {
      config: "seed captioner: ResNet-101 (layer3-4 trained, BN frozen) at 224x224, decoder as above, AdamW",
      batch: trainBatch,
      captionTokens,
      steps: trainSteps,
      imagesPerSecond: Number(trainStep.toFixed(4)),
    },
  };
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(RESULTS, JSON.stringify(results, null, 2) + "\n");
  return results;
}

if (import.meta.main) await benchModel();
