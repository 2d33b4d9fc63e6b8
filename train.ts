// `deno task train`: trains the captioner. With no arguments, the built-in default: the synthetic
// scenes served over HTTP in-process, streamed through the real loader, a CPU-sized model, a
// top-K vocabulary from the scenes' captions; then beam-search evaluation on held-out images and a
// checkpoint. `--help` lists every option.

import {
  type CaptionRecord,
  formatStats,
  rampLevel,
  readRecords,
  startScenesServer,
  StreamingLoader,
  webDatasetSource,
} from "./data/mod.ts";
import { Captioner, type CaptionerConfig } from "./model/captioner.ts";
import { loadWeights } from "./model/weights.ts";
import { TimeBudget } from "./run/budget.ts";
import { loadLatest, saveCheckpoint, saveModel } from "./run/checkpoint.ts";
import { helpText, parseTrainArgs, type TrainConfig } from "./run/config.ts";
import { captionRecords, constantBaseline, type EvalOptions } from "./run/evaluate.ts";
import type { SavedConfig } from "./run/load_captioner.ts";
import { MetricsLog } from "./run/metrics_log.ts";
import { formatSeconds, Progress } from "./run/progress.ts";
import { buildVocab, vocabTokenizer } from "./run/vocab.ts";
import { F, gpu, manualSeed, memory, optim, rngState, setRngState, tensor, tidy } from "./tensor/mod.ts";
import { tuner } from "./tensor/webgpu/tuner.ts";
import type { WordPiece } from "./tokenizer/mod.ts";

export function captionerConfig(cfg: TrainConfig, tok: WordPiece): CaptionerConfig {
  // (runs saved before maxPool and stemKernel existed had torchvision's stem)
  const { depth, widths, outputStride, maxPool = true, stemKernel = 7, trainable } = cfg.encoder;
  return {
    vocabSize: tok.size,
    padId: tok.ids.pad,
    bosId: tok.ids.bos,
    eosId: tok.ids.eos,
    maxLength: cfg.maxLength,
    encoder: {
      depth,
      ...(widths ? { widths } : {}),
      outputStride,
      maxPool,
      stemKernel,
      finetune: { trainable: trainable as never, frozenBatchNorm: cfg.preset === "seed" },
    },
    // ceil(size / outputStride)^2 image tokens
    decoder: {
      ...cfg.decoder,
      imageProjection: "shared",
      imagePositions: cfg.decoder.imagePositions ? Math.ceil(cfg.imageSize / outputStride) ** 2 : 0,
    },
    loss: { labelSmoothing: cfg.labelSmoothing, eosBeta: cfg.eosBeta, eosWindow: cfg.eosWindow },
  };
}

interface Splits {
  train: CaptionRecord[] | null;
  source: ConstructorParameters<typeof StreamingLoader>[0];
  val: CaptionRecord[];
  test: CaptionRecord[];
  close: () => Promise<void>;
}

async function openData(cfg: TrainConfig): Promise<Splits> {
  if (cfg.data === "synthetic") {
    const { train, val, test, size } = cfg.synthetic;
    const server = await startScenesServer({
      seed: cfg.seed,
      width: size,
      height: size,
      counts: { train, val, test },
    });
    const records = server.records("train");
    return {
      train: records,
      source: records,
      val: server.records("val"),
      test: server.records("test"),
      close: () => server.close(),
    };
  }
  if (!cfg.data) {
    throw new Error("--data is required with --preset seed (a manifest, shards, or 'synthetic')");
  }
  const shards = /\.tar(\}|$)/.test(cfg.data);
  const train = shards ? null : await readRecords(cfg.data);
  const val = cfg.valData ? await readRecords(cfg.valData) : [];
  return { train, source: train ?? webDatasetSource(cfg.data), val, test: val, close: async () => {} };
}

/**
 * A new run never overwrites an earlier one: when out/name holds a run already, the next free
 * name-2, name-3, ... is used instead (and said so); `--resume` continues the earlier one.
 */
async function freshRunName(out: string, name: string): Promise<string> {
  const holdsRun = async (dir: string) => {
    for (const f of ["latest.json", "model.safetensors", "log.jsonl"]) {
      try {
        await Deno.stat(`${dir}/${f}`);
        return true;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return false;
  };
  if (!(await holdsRun(`${out}/${name}`))) return name;
  for (let i = 2;; i++) {
    if (!(await holdsRun(`${out}/${name}-${i}`))) {
      console.log(
        `${out}/${name} holds an earlier run (--resume continues it): this one goes to ${out}/${name}-${i}`,
      );
      return `${name}-${i}`;
    }
  }
}

export async function main(args: string[] = Deno.args): Promise<number> {
  const began = performance.now();
  const parsed = await parseTrainArgs(args);
  if (parsed === "help") {
    console.log(helpText());
    return 0;
  }
  let cfg = parsed;
  if (!cfg.resume) cfg = { ...cfg, name: await freshRunName(cfg.out, cfg.name) };
  const runDir = `${cfg.out}/${cfg.name}`;
  await Deno.mkdir(runDir, { recursive: true });
  const resumed = cfg.resume ? await loadLatest(runDir) : null;
  if (cfg.resume && !resumed) console.log(`no checkpoint in ${runDir} yet: starting fresh`);
  // A resumed run keeps its saved config; flags given now (say a larger --steps) still apply.
  if (resumed) {
    cfg = {
      ...(await parseTrainArgs(args, resumed.trainer.run as TrainConfig)) as TrainConfig,
      resume: true,
    };
  }
  manualSeed(cfg.seed);

  const adapter = gpu().adapter;
  console.log(
    `adapter: ${adapter.description}${adapter.fallback ? " (CPU fallback)" : ""}; run folder ${runDir}`,
  );
  const data = await openData(cfg);
  const tok = resumed ? vocabTokenizer(resumed.model.meta.vocab) : (() => {
    if (!data.train) {
      throw new Error("building a vocabulary needs a manifest (or --resume from a checkpoint)");
    }
    const v = buildVocab(data.train.flatMap((r) => r.captions), cfg.vocabSize);
    console.log(v.report);
    return v.tokenizer;
  })();

  const modelConfig = captionerConfig(cfg, tok);
  const model = new Captioner(modelConfig);
  const saved: SavedConfig = { ...modelConfig, imageSize: cfg.imageSize };
  if (resumed) model.loadStateDict(resumed.model.weights);
  else if (cfg.encoder.pretrained) {
    await loadWeights(model.encoder!, cfg.encoder.pretrained, { strict: false });
  }
  const encoderParams = model.encoder?.parameters().filter((p) => p.requiresGrad) ?? [];
  const decoderParams = model.decoder.parameters();
  const opt = new optim.AdamW([
    { params: encoderParams, lr: cfg.lr.encoder },
    { params: decoderParams, lr: cfg.lr.decoder },
  ], { weightDecay: cfg.weightDecay, betas: cfg.betas ?? [0.9, 0.999] }); // runs saved before --betas
  // A resumed run's clock goes on from its checkpoint: --minutes is the whole run's, however many
  // invocations it takes (the time between the last checkpoint and a kill is lost with its steps).
  const spent = resumed?.trainer.budget;
  const budget = new TimeBudget(
    cfg.minutes > 0 ? cfg.minutes * 60 : Infinity,
    began - (spent?.seconds ?? 0) * 1000,
  );
  budget.evalSeconds = spent?.evalSeconds ?? null;
  // The schedule scales the configured base rates, so it is built before a resumed state
  // overwrites the groups' current (already scheduled) rates.
  // How far the run is (0..1): by steps, or by the time budget when that ends it first.
  const run = { progress: Math.max((resumed?.trainer.step ?? 0) / cfg.steps, budget.progress()) };
  const decays = { "inverse-sqrt": optim.warmupInverseSqrt, constant: optim.warmupConstant };
  const decayName = cfg.decay ?? "inverse-sqrt"; // runs saved before the option existed
  if (!(decayName in decays)) {
    throw new Error(`--decay must be inverse-sqrt or constant, got "${decayName}"`);
  }
  const decay = decays[decayName](cfg.warmup);
  const sched = new optim.LRScheduler(opt, (t) => decay(t) * optim.cooldown(run.progress, cfg.cooldown));
  if (resumed) {
    opt.loadStateDict({ ...resumed.trainer.optimizer, tensors: resumed.optimizer });
    sched.step(); // the saved rates followed the earlier run's length: this run's schedule decides
    setRngState(resumed.trainer.rng);
  }
  if (resumed) {
    for (const t of [...resumed.model.weights.values(), ...resumed.optimizer.values()]) t.dispose();
  }
  const nParams = model.parameters().reduce((s, p) => s + p.size, 0);
  console.log(
    `model: ${(nParams / 1e6).toFixed(2)}M parameters (${
      encoderParams.length + decoderParams.length
    } tensors train)`,
  );

  const loader = new StreamingLoader(data.source, {
    batchSize: cfg.batch,
    imageSize: cfg.imageSize,
    minSide: Math.min(150, cfg.imageSize),
    epochs: Infinity,
    seed: cfg.seed,
    workers: cfg.workers,
    concurrency: cfg.concurrency,
    resume: resumed?.trainer.data as never,
  });
  const log = await MetricsLog.open(`${runDir}/log.jsonl`);
  let step = resumed?.trainer.step ?? 0, stop = false;
  const onSignal = () => (stop = true);
  Deno.addSignalListener("SIGINT", onSignal);

  const checkpoint = async () => {
    const o = opt.stateDict();
    await saveCheckpoint(runDir, {
      model: { weights: model.stateDict(), meta: { config: saved, vocab: [...tok.pieces] } },
      optimizer: o.tensors,
      trainer: {
        step,
        optimizer: { stepCount: o.stepCount, groups: o.groups },
        rng: rngState(),
        data: loader.state(),
        run: cfg,
        budget: { seconds: budget.elapsed(), evalSeconds: budget.evalSeconds },
      },
    });
  };

  const start = performance.now(), test = data.test.slice(0, cfg.testImages);
  const progress = new Progress(cfg.steps, "step", step, () => budget.trainSeconds - budget.elapsed());
  const evalOptions = { imageSize: cfg.imageSize, batch: cfg.batch, beam: cfg.beam, alpha: cfg.alpha };
  let images = 0, tokens = 0, micro = 0, lastLoss = NaN, inFlight = Promise.resolve();
  console.log(
    `training: ${cfg.steps} steps of ${cfg.batch * cfg.accumulate} images${
      cfg.minutes ? `, ${cfg.minutes} min in all with the held-out evaluation` : ""
    }`,
  );
  try {
    for await (const batch of loader) {
      if (stop || step >= cfg.steps) break;
      const k = cfg.captionsPerImage;
      // k captions per image: the sampled one first, then the other references in turn
      const captions = k === 1 ? batch.captions : batch.references.flatMap((refs, i) => {
        const rest = refs.filter((r) => r !== batch.captions[i]);
        return [
          batch.captions[i],
          ...Array.from({ length: k - 1 }, (_, j) => rest[j % Math.max(1, rest.length)] ?? batch.captions[i]),
        ];
      });
      const enc = tok.encodeBatch(captions, { maxLength: cfg.maxLength + 2 });
      const terms = tidy(() => {
        const images = tensor(batch.images, batch.shape), ids = tensor(enc.ids, [enc.rows, enc.length]);
        const t = model.lossTerms(images, ids, k);
        F.div(t.loss, cfg.accumulate).backward();
        return t;
      });
      images += batch.keys.length;
      tokens += enc.lengths.reduce((s, n) => s + n - 1, 0);
      if (++micro % cfg.accumulate !== 0) {
        for (const t of [terms.loss, terms.ce, terms.eos]) t.dispose();
        continue;
      }
      // clipping happens inside the update: no pass over the gradients just to rescale them
      const { norm, scale } = opt.gradNorm(cfg.clip);
      const lrs = opt.groups.map((g) => g.lr);
      opt.step({ gradScale: scale });
      scale.dispose();
      opt.zeroGrad();
      // One step in flight: the GPU runs this step while the CPU records the next, and the time
      // checks below see steps that are done, not steps merely recorded (up to logEvery of them
      // were queued otherwise: a 14.5-minute run overshot by 20 s).
      const done = gpu().done();
      await inFlight;
      inFlight = done;
      step++;
      run.progress = Math.max(step / cfg.steps, budget.progress());
      sched.step();
      const progress01 = step / cfg.steps;
      loader.setAugmentLevel(cfg.augment.max * rampLevel(progress01, cfg.augment.c));
      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const [loss, ce, eos, gn] = await Promise.all(
          [terms.loss, terms.ce, terms.eos, norm].map((t) => t.item()),
        );
        lastLoss = loss;
        const secs = (performance.now() - start) / 1000, st = loader.stats();
        log.write(step, {
          loss,
          ce,
          eos,
          gradNorm: gn,
          lr: lrs,
          augment: cfg.augment.max * rampLevel(progress01, cfg.augment.c),
          imagesPerSecond: images / secs,
          tokensPerSecond: tokens / secs,
          stepSeconds: secs / (step - (resumed?.trainer.step ?? 0)),
          loader: {
            waitShare: st.waitShare,
            delivered: st.delivered,
            failures: st.failures,
            queuedBatches: st.queuedBatches,
          },
          gpu: memory(),
        });
        progress.update(step, `loss ${loss.toFixed(3)} ${(images / secs).toFixed(1)} img/s`);
      }
      for (const t of [terms.loss, terms.ce, terms.eos, norm]) t.dispose();
      if (step % cfg.checkpointEvery === 0) await checkpoint();
      if (cfg.evalEvery && step % cfg.evalEvery === 0 && data.val.length) {
        progress.done();
        const r = await captionRecords(model, tok, data.val.slice(0, cfg.evalImages), {
          imageSize: cfg.imageSize,
          batch: cfg.batch,
          beam: 1,
          alpha: cfg.alpha,
          strategy: "greedy",
        });
        console.log(
          `step ${step}: val BLEU-4 ${r.scores.Bleu_4.toFixed(3)} CIDEr ${
            r.scores.CIDEr.toFixed(3)
          } (greedy, ${r.images} images, ${r.seconds.toFixed(1)} s)`,
        );
        for (const [k, c] of [...r.captions].slice(0, 3)) {
          console.log(`  ${k}: "${c}"  | ref: "${r.references.get(k)![0]}"`);
        }
        log.write(step, { val: r.scores, valSeconds: r.seconds });
      }
      if (budget.due()) {
        progress.done();
        // said first, or it reads as a stall: its warm-up compiles the decoding kernels (15 s on a
        // 2-core host with cold caches, 55 s before the shipped table knew them: bench/RESULTS.md)
        console.log(`step ${step}: timing the held-out evaluation on one batch, to fit it in the budget`);
        const t0 = performance.now();
        const seconds = test.length ? await timeOneBatch(model, tok, test, evalOptions) : 0;
        budget.measure(seconds, cfg.batch, test.length);
        log.write(step, { evalBatchSeconds: seconds, evalProbeSeconds: (performance.now() - t0) / 1000 });
        console.log(
          `held-out evaluation expected to take ${formatSeconds(budget.evalSeconds!)}: training stops by ${
            formatSeconds(budget.trainSeconds)
          } into the run`,
        );
      }
      if (budget.over()) {
        progress.done();
        console.log(
          `time budget of ${cfg.minutes} min reached at step ${step} (the evaluation's share kept)`,
        );
        break;
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    progress.done();
    try {
      await inFlight; // a step that failed on the GPU is reported, not checkpointed
      await checkpoint();
    } finally {
      loader.close();
    }
  }
  const trainSeconds = (performance.now() - start) / 1000;
  console.log(
    `trained ${step} steps in ${formatSeconds(trainSeconds)} (last loss ${lastLoss.toFixed(3)}); ${
      formatStats(loader.stats())
    }`,
  );
  if (stop) {
    console.log(`interrupted: checkpoint saved; continue with --resume --name ${cfg.name}`);
    await data.close();
    return 130;
  }

  let result: Record<string, unknown> = {};
  if (test.length) {
    const r = await captionRecords(model, tok, test, evalOptions);
    const base = data.train ? constantBaseline(data.train.map((x) => x.captions[0]), r.references) : null;
    console.log(
      `held-out (${r.images} images, beam ${cfg.beam}): ` +
        Object.entries(r.scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join("  "),
    );
    if (base) {
      console.log(
        `always "${base.caption}": BLEU-4 ${base.scores.Bleu_4.toFixed(3)} CIDEr ${
          base.scores.CIDEr.toFixed(3)
        }`,
      );
    }
    result = {
      heldOut: r.scores,
      images: r.images,
      baseline: base,
      evalSeconds: r.seconds,
      ...(budget.evalSeconds === null ? {} : { evalEstimateSeconds: budget.evalSeconds }),
    };
  }
  await saveModel(`${runDir}/model.safetensors`, {
    weights: model.stateDict(),
    meta: { config: saved, vocab: [...tok.pieces] },
  });
  const summary = {
    command: ["deno task train", ...args].join(" "),
    adapter: adapter.description,
    steps: step,
    trainSeconds: Math.round(trainSeconds),
    totalSeconds: Math.round((performance.now() - began) / 1000), // this invocation's
    parameters: nParams,
    ...result,
  };
  await Deno.writeTextFile(`${runDir}/metrics.json`, JSON.stringify(summary, null, 1) + "\n");
  console.log(`model written to ${runDir}/model.safetensors; summary in ${runDir}/metrics.json`);
  log.close();
  await data.close();
  return 0;
}

/** Seconds to caption one batch of `test` the way the final evaluation will (its third run). */
async function timeOneBatch(model: Captioner, tok: WordPiece, test: CaptionRecord[], o: EvalOptions) {
  const batch = test.slice(0, o.batch), tail = test.slice(test.length - (test.length % o.batch));
  // Untimed: the first call measures the decoding kernels a table does not know yet (calls during a
  // measurement take the defaults), the second compiles the winners for the sizes the first met
  // with defaults (attention kernels compile the decoded length in). Seen with a cold table: 34 s
  // for the timed batch after one untimed call, against 7.5 s per batch in the final evaluation.
  // The last, smaller batch has shape classes of its own: measured here, not in the evaluation.
  for (let warm = 0; warm < 2; warm++) {
    for (const records of tail.length ? [batch, tail] : [batch]) await captionRecords(model, tok, records, o);
    await tuner.settled();
  }
  return (await captionRecords(model, tok, batch, o)).seconds;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`train: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
