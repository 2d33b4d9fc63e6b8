// The decode pool's timeout: a wedged worker is replaced and the pool goes on, and a thread blocked
// past the timeout does not fail a decode that finished while it was blocked.
import assert from "node:assert/strict";
import { IDENTITY_PLAN } from "../data/augment.ts";
import type { DecodeJob } from "../data/decode_job.ts";
import { DecodePool } from "../data/pool.ts";

const STAND_IN = new URL("./helpers/stand_in_decoder.js", import.meta.url).href;

/** A job for the stand-in worker: it answers with width = size, or wedges when size < 0. */
const job = (id: number, size: number): DecodeJob => ({
  id,
  size,
  bytes: new Uint8Array(1),
  maxPixels: 1,
  minSide: 1,
  mean: [0, 0, 0],
  std: [1, 1, 1],
  plan: IDENTITY_PLAN,
});

Deno.test("a wedged decode fails after the timeout, its worker is replaced, and the pool goes on", async () => {
  using pool = new DecodePool(1, 300, STAND_IN);
  const t0 = performance.now();
  const wedged = await pool.run(job(1, -1));
  assert.ok(!wedged.ok && wedged.reason === "decode_error" && /took over 300 ms/.test(wedged.message));
  assert.ok(performance.now() - t0 >= 300);
  assert.deepEqual(await pool.run(job(2, 5)), { id: 2, ok: true, width: 5, height: 5 });
});

Deno.test("a thread blocked past the timeout does not fail a decode that finished meanwhile", async () => {
  using pool = new DecodePool(1, 300, STAND_IN);
  assert.ok((await pool.run(job(0, 1))).ok, "the worker has started");
  const answer = pool.run(job(1, 7));
  const until = performance.now() + 1200; // a long synchronous pipeline compile
  while (performance.now() < until) { /* blocked */ }
  assert.deepEqual(await answer, { id: 1, ok: true, width: 7, height: 7 });
});
