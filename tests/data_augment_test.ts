// Augmentation: the ramp, deterministic plans, caption-aware flips, and the pixel ops in the decode job.
import assert from "node:assert/strict";
import { flipCaption, IDENTITY_PLAN, planAugment, rampLevel } from "../data/augment.ts";
import { encodeRgb } from "../data/codecs.ts";
import { runDecodeJob } from "../data/decode_job.ts";
import { rng } from "../data/rng.ts";

Deno.test("the level ramps exponentially from 0 to 1", () => {
  assert.equal(rampLevel(0), 0);
  assert.equal(rampLevel(1), 1);
  assert.ok(Math.abs(rampLevel(0.5, 5) - Math.expm1(2.5) / Math.expm1(5)) < 1e-12);
  assert.ok(rampLevel(0.5, 5) < 0.1, "slow start");
  assert.ok(Math.abs(rampLevel(0.3, 0) - 0.3) < 1e-9, "c = 0 is linear");
  assert.equal(rampLevel(2), 1);
});

Deno.test("plans are deterministic, off at level 0, and flips keep captions true", () => {
  const refs = ["a red circle to the left of a blue square", "a blue square right of a red circle"];
  assert.deepEqual(planAugment(rng(1), 0.8, refs), planAugment(rng(1), 0.8, refs));
  assert.deepEqual(planAugment(rng(1), 0, refs).plan, IDENTITY_PLAN);
  assert.equal(flipCaption("Left of the right one, leftover"), "Right of the left one, leftover");
  let flips = 0, changed = 0;
  for (let i = 0; i < 200; i++) {
    const { plan, references } = planAugment(rng(i), 1, refs);
    if (plan.flip) flips++, assert.deepEqual(references, refs.map(flipCaption));
    if (JSON.stringify(plan) !== JSON.stringify(IDENTITY_PLAN)) changed++;
    assert.ok(
      !planAugment(rng(i), 1, refs, { flipCaptions: "skip" }).plan.flip,
      "skip never flips a sided caption",
    );
  }
  assert.ok(flips > 60 && flips < 140, `${flips} flips of 200 at p = 0.5`);
  assert.ok(changed > 150);
  const low =
    Array.from({ length: 200 }, (_, i) => planAugment(rng(i), 0.1, refs).plan.flip).filter(Boolean).length;
  assert.ok(low < 25, `${low} flips at level 0.1`);
});

Deno.test("decode job: flip mirrors pixels, augmentation is deterministic, checks come before decoding", async () => {
  const w = 64, h = 48, data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data[3 * i] = (i % w) * 4, data[3 * i + 1] = Math.floor(i / w) * 5; // ramps
  const png = await encodeRgb({ width: w, height: h, data }, "png");
  const job = {
    id: 0,
    bytes: png,
    size: 16,
    maxPixels: 1e6,
    minSide: 16,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    plan: IDENTITY_PLAN,
  };
  const plain = await runDecodeJob(job),
    flipped = await runDecodeJob({ ...job, plan: { ...IDENTITY_PLAN, flip: true } });
  assert.ok(plain.ok && flipped.ok && plain.pixels && flipped.pixels);
  for (let y = 0; y < 16; y++) {
    for (let x = 0; x < 16; x++) {
      assert.ok(Math.abs(plain.pixels[y * 16 + x] - flipped.pixels[y * 16 + 15 - x]) < 1e-6);
    }
  }
  const plan = planAugment(rng(5), 1, ["a caption with words"]).plan;
  const busy = { ...plan, jpegQuality: 40, noise: 0.05, noiseSeed: 9, blur: 0.5, angle: 0.2 };
  const [a, b] = [await runDecodeJob({ ...job, plan: busy }), await runDecodeJob({ ...job, plan: busy })];
  assert.ok(a.ok && b.ok && a.pixels && b.pixels);
  assert.deepEqual(a.pixels, b.pixels);
  assert.notDeepEqual(a.pixels, plain.pixels);

  assert.equal((await runDecodeJob({ ...job, maxPixels: 1000 })).ok ? "" : "too_large", "too_large");
  const small = await runDecodeJob({ ...job, minSide: 49 });
  assert.ok(!small.ok && small.reason === "too_small");
  const junk = await runDecodeJob({ ...job, bytes: new TextEncoder().encode("<html>") });
  assert.ok(!junk.ok && junk.reason === "not_image");
  const cut = await runDecodeJob({ ...job, bytes: png.slice(0, 200) });
  assert.ok(!cut.ok && cut.reason === "decode_error");
});
