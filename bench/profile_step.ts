// Where a training step of the default (tiny) captioner spends its time, kernel by kernel: GPU
// milliseconds and launches per step from timestamp queries, beside the step's wall time, so the
// gap (launch overhead, host work) shows too. Random pixels: kernel costs do not depend on them.
//
//   deno run -A bench/profile_step.ts [--steps 3] [--<train option> value ...]

import { makeScene } from "../data/scenes.ts";
import { Captioner } from "../model/captioner.ts";
import { parseTrainArgs, PRESETS } from "../run/config.ts";
import { buildVocab } from "../run/vocab.ts";
import { F, gpu, optim, randn, tensor, tidy } from "../tensor/mod.ts";
import { captionerConfig } from "../train.ts";

const at = Deno.args.indexOf("--steps");
const steps = at >= 0 ? Number(Deno.args[at + 1]) : 3;
const parsed = await parseTrainArgs(
  Deno.args.filter((_, i) => at < 0 || (i !== at && i !== at + 1)),
  PRESETS.tiny,
);
if (parsed === "help") Deno.exit(0);
const cfg = parsed;
const captions = Array.from({ length: 2000 }, (_, i) => makeScene(cfg.seed, "train", i).captions).flat();
const tok = buildVocab(captions, cfg.vocabSize).tokenizer;
const model = new Captioner(captionerConfig(cfg, tok));
const opt = new optim.AdamW([{ params: model.parameters(), lr: cfg.lr.decoder }], {
  weightDecay: cfg.weightDecay,
});
const k = cfg.captionsPerImage;
const enc = tok.encodeBatch(captions.slice(0, cfg.batch * k), { maxLength: cfg.maxLength + 2 });

async function step(): Promise<void> {
  const loss = tidy(() => {
    const images = randn([cfg.batch, 3, cfg.imageSize, cfg.imageSize]);
    const t = model.lossTerms(images, tensor(enc.ids, [enc.rows, enc.length], { dtype: "i32" }), k);
    F.div(t.loss, cfg.accumulate).backward();
    for (const x of [t.ce, t.eos]) x.dispose();
    return t.loss;
  });
  const { scale } = opt.gradNorm(cfg.clip);
  opt.step({ gradScale: scale });
  opt.zeroGrad();
  scale.dispose();
  await loss.item();
  loss.dispose();
}

for (let i = 0; i < 3; i++) await step(); // compile, tune, fill the pools
const d0 = gpu().dispatches, t0 = performance.now();
for (let i = 0; i < steps; i++) await step();
const wall = (performance.now() - t0) / steps, launches = (gpu().dispatches - d0) / steps;
gpu().startProfile();
for (let i = 0; i < steps; i++) await step();
const rows = await gpu().stopProfile();
const gpuMs = rows.reduce((s, r) => s + r.ms, 0) / steps;
console.log(`adapter: ${gpu().adapter.description}; batch ${cfg.batch} x ${k} captions, ${cfg.imageSize} px`);
console.log(
  `per step: ${wall.toFixed(1)} ms wall, ${launches.toFixed(0)} launches, ${
    gpuMs.toFixed(1)
  } ms of kernels ` +
    `(timed one per pass, so a little above their cost in a shared pass)`,
);
console.log(`${"kernel".padEnd(40)}${"launches".padStart(9)}${"ms".padStart(9)}${"share".padStart(8)}`);
for (const r of rows.slice(0, 40)) {
  console.log(
    `${r.name.padEnd(40)}${(r.launches / steps).toFixed(0).padStart(9)}${
      (r.ms / steps).toFixed(2).padStart(9)
    }${(100 * r.ms / steps / gpuMs).toFixed(1).padStart(7)}%`,
  );
}
