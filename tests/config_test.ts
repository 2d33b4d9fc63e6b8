// train's options: preset, then a JSON config file, then flags, each coerced to its default's type.
import assert from "node:assert/strict";
import { TimeBudget } from "../run/budget.ts";
import { parseTrainArgs, PRESETS, type TrainConfig } from "../run/config.ts";

/** Rejects with an error whose message holds `text`. */
const rejects = (f: () => Promise<unknown>, text: string) =>
  assert.rejects(f, (e: Error) => e.message.includes(text) || assert.fail(`"${e.message}" lacks "${text}"`));
const parse = async (args: string[]) => (await parseTrainArgs(args)) as TrainConfig;

Deno.test("train options: flags are coerced to their defaults' types", async () => {
  const cfg = await parse([
    "--batch",
    "8",
    "--encoder.maxPool",
    "false",
    "--encoder.widths",
    "16,32,64,96",
    "--betas",
    "0.8,0.95",
    "--decay",
    "inverse-sqrt",
  ]);
  assert.deepEqual(cfg.batch, 8);
  assert.deepEqual(cfg.encoder.maxPool, false);
  assert.deepEqual(cfg.encoder.widths, [16, 32, 64, 96]);
  assert.deepEqual(cfg.betas, [0.8, 0.95]);
  assert.deepEqual(cfg.decay, "inverse-sqrt");
  // what no flag names keeps the preset's value, and the preset itself is untouched
  assert.deepEqual(cfg.lr, PRESETS.tiny.lr);
  assert.deepEqual(PRESETS.tiny.batch, 32);
  assert.deepEqual((await parse(["--encoder.widths", "null"])).encoder.widths, null);
  assert.deepEqual((await parse(["--preset", "seed"])).encoder.depth, 101);
});

Deno.test("train options: a config file sits between the preset and the flags", async () => {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify({ batch: 4, lr: { decoder: 0.01 }, betas: [0.8, 0.9] }));
    const cfg = await parse(["--config", file, "--batch", "6"]);
    assert.deepEqual(cfg.batch, 6);
    assert.deepEqual(cfg.lr, { encoder: PRESETS.tiny.lr.encoder, decoder: 0.01 });
    assert.deepEqual(cfg.betas, [0.8, 0.9]);
    await Deno.writeTextFile(file, JSON.stringify({ bacth: 4 }));
    await rejects(() => parse(["--config", file]), 'unknown option "bacth"');
    await Deno.writeTextFile(file, "{ not json");
    await rejects(() => parse(["--config", file]), file);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("train options: bad values are errors that name the option", async () => {
  await rejects(() => parse(["--batch", "many"]), "--batch expects a number");
  await rejects(() => parse(["--encoder.maxPool", "no"]), "--encoder.maxPool expects true or false");
  await rejects(() => parse(["--encoder.widths", "16,x"]), "--encoder.widths expects");
  await rejects(() => parse(["--betas", "0.9"]), "--betas expects two rates");
  await rejects(() => parse(["--betas", "0.9,1"]), "--betas expects two rates");
  await rejects(() => parse(["--preset", "huge"]), "--preset must be tiny or seed");
  await assert.rejects(() => parse(["--no-such-option", "1"]));
});

Deno.test("time budget: training keeps the held-out evaluation's share of the run", () => {
  const startedAgo = (s: number) => performance.now() - s * 1000;
  const early = new TimeBudget(100, startedAgo(30));
  assert(!early.due() && !early.over(), "not due before 40% of the run");
  const b = new TimeBudget(100, startedAgo(50));
  assert(b.due());
  b.measure(4, 32, 100); // 4 batches of 32: 16 s, and as much again kept
  assert(!b.due());
  assert.equal(b.evalSeconds, 16);
  assert(Math.abs(b.trainSeconds - 68) < 1e-9);
  assert(!b.over() && b.progress() > 0.6);
  b.measure(9, 32, 100);
  assert(b.over(), "50 s in, 72 s kept for the evaluation: training is over");
  b.measure(40, 32, 100);
  assert(b.trainSeconds < 0 && b.over(), "an evaluation longer than the budget ends training at once");
  const none = new TimeBudget(Infinity);
  assert(!none.due() && !none.over() && none.progress() === 0);
});
