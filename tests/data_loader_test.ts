// The streaming loader against the scenes server: faults counted, healthy records exactly once,
// bounded time and memory, resume, sharding, normalisation, cache.
import assert from "node:assert/strict";
import { DiskCache } from "../data/cache.ts";
import { StreamingLoader } from "../data/loader.ts";
import { DecodePool } from "../data/pool.ts";
import { FAULT_REASONS, startScenesServer } from "../data/scenes_server.ts";
import type { Batch, CaptionRecord, FailureReason } from "../data/types.ts";

const FAULTS = {
  notFound: 0.04,
  serverError: 0.04,
  flaky: 0.05,
  slow: 0.03,
  hang: 0.03,
  truncated: 0.04,
  notImage: 0.04,
  oversized: 0.03,
  redirectLoop: 0.03,
  tiny: 0.03,
  bomb: 0.03,
};
// Small images and short timeouts keep the whole file to a few seconds on two cores.
const FAST = {
  batchSize: 8,
  imageSize: 32,
  minSide: 32,
  workers: 2,
  concurrency: 16,
  connectTimeoutMs: 400,
  totalTimeoutMs: 800,
  retries: 1,
  backoffMs: 20,
  maxBytes: 256 * 1024,
};

async function drain(loader: StreamingLoader, limit = Infinity): Promise<Batch[]> {
  const batches: Batch[] = [];
  for await (const batch of loader) {
    batches.push(batch);
    if (batches.length >= limit) break;
  }
  return batches;
}

function healthy(records: CaptionRecord[], faultOf: (key: string) => string | undefined) {
  return records.filter((r) => FAULT_REASONS[faultOf(r.key) as keyof typeof FAULT_REASONS] === undefined);
}

Deno.test("faulty server: every healthy record once, every fault counted under its reason, in bounded time and memory", async () => {
  const server = await startScenesServer({
    seed: 3,
    width: 64,
    counts: { train: 240 },
    faults: FAULTS,
    oversizedBytes: 1 << 20,
  });
  try {
    const records = server.records("train");
    const expected: Partial<Record<FailureReason, number>> = {};
    for (const r of records) {
      const reason = FAULT_REASONS[server.faultOf(r.key) as keyof typeof FAULT_REASONS];
      if (reason) expected[reason] = (expected[reason] ?? 0) + 1;
    }
    assert.ok(Object.keys(expected).length >= 7, "the fault mix should exercise most reasons");
    const start = performance.now();
    const loader = new StreamingLoader(records, { ...FAST, prefetch: 2, seed: 1 });
    const seen: string[] = [];
    let maxQueued = 0, maxInFlight = 0;
    for await (const batch of loader) {
      seen.push(...batch.keys);
      const s = loader.stats();
      maxQueued = Math.max(maxQueued, s.queuedBatches);
      maxInFlight = Math.max(maxInFlight, s.inFlight);
      assert.deepEqual(batch.shape, [batch.keys.length, 3, 32, 32]);
      assert.equal(batch.images.length, batch.keys.length * 3 * 32 * 32);
    }
    const seconds = (performance.now() - start) / 1000;
    const stats = loader.stats();
    assert.deepEqual(new Set(seen).size, seen.length, "no record twice");
    assert.deepEqual(new Set(seen), new Set(healthy(records, server.faultOf).map((r) => r.key)));
    for (const [reason, n] of Object.entries(stats.failures)) {
      assert.equal(n, expected[reason as FailureReason] ?? 0, `failures for ${reason}`);
    }
    assert.ok(stats.retries > 0, "flaky and 5xx records were retried");
    assert.ok(seconds < 20, `took ${seconds.toFixed(1)} s`);
    assert.ok(maxInFlight <= FAST.concurrency, `in flight ${maxInFlight}`);
    assert.ok(maxQueued <= 2 + FAST.concurrency / FAST.batchSize + 1, `queued ${maxQueued} batches`);
  } finally {
    await server.close();
  }
});

Deno.test("a resumed loader delivers exactly the records the first one had not", async () => {
  const server = await startScenesServer({ seed: 4, width: 48, counts: { train: 120 } });
  try {
    const records = server.records("train");
    const opts = { ...FAST, minSide: 16, seed: 7, epochs: 2 };
    const first = new StreamingLoader(records, opts);
    const before: string[][] = [[], []];
    for (const batch of await drain(first, 18)) before[batch.epoch].push(...batch.keys);
    const state = structuredClone(first.state());
    first.close();
    assert.equal(state.epoch, 1, "stopped during the second epoch");

    const second = new StreamingLoader(records, { ...opts, resume: state });
    const after: string[][] = [[], []];
    for (const batch of await drain(second)) after[batch.epoch].push(...batch.keys);
    assert.equal(after[0].length, 0);
    const epoch1 = [...before[1], ...after[1]];
    assert.equal(new Set(epoch1).size, epoch1.length, "nothing delivered twice");
    assert.equal(epoch1.length, records.length, "nothing lost");
    assert.throws(() => new StreamingLoader(records, { ...opts, seed: 8, resume: state }), /cannot resume/);
  } finally {
    await server.close();
  }
});

Deno.test("rank and worker parts are disjoint and cover the epoch; order and captions follow the seed", async () => {
  const server = await startScenesServer({ seed: 5, width: 48, counts: { train: 60 } });
  try {
    const records = server.records("train");
    const parts: string[][] = [];
    using pool = new DecodePool(2); // one pool for all seven loaders: workers are slow to start
    for (const [rank, workerId] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
      const loader = new StreamingLoader(records, {
        ...FAST,
        pool,
        minSide: 16,
        rank,
        worldSize: 2,
        workerId,
        numWorkers: 2,
      });
      parts.push((await drain(loader)).flatMap((b) => b.keys));
    }
    const all = parts.flat();
    assert.equal(all.length, records.length);
    assert.equal(new Set(all).size, records.length);
    assert.ok(parts.every((p) => p.length === 15));

    const captions = async (seed: number) => {
      const loader = new StreamingLoader(records, { ...FAST, pool, minSide: 16, seed, concurrency: 1 });
      const batches = await drain(loader);
      return batches.flatMap((b) => b.keys.map((k, i) => `${k}:${b.captions[i]}`));
    };
    const [a, b, c] = [await captions(1), await captions(1), await captions(2)];
    assert.deepEqual(a, b, "same seed, same order and captions");
    assert.notDeepEqual(a, c);
  } finally {
    await server.close();
  }
});

Deno.test("pixels are normalised exactly once with the configured mean and std", async () => {
  // A flat grey PNG: every output value must be (128/255 - mean) / std for its channel.
  const { encodeRgb } = await import("../data/codecs.ts");
  const png = await encodeRgb({ width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(128) }, "png");
  const record = { key: "grey", url: "", bytes: png, captions: ["a flat grey picture"] };
  const mean = [0.5, 0.25, 0], std = [0.5, 0.25, 2];
  const [batch] = await drain(
    new StreamingLoader([record], { ...FAST, imageSize: 8, minSide: 8, mean, std }),
  );
  for (let c = 0; c < 3; c++) {
    const want = (128 / 255 - mean[c]) / std[c];
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(batch.images[c * 64 + i] - want) < 1e-5, `channel ${c}`);
  }
  assert.throws(() => new StreamingLoader([record], { mean: [0.5] }), /mean and std need 3 values/);
});

Deno.test("bad records and short captions are counted, not fatal; stats report throughput", async () => {
  const server = await startScenesServer({ seed: 6, width: 48, counts: { train: 10 } });
  try {
    const records: CaptionRecord[] = [
      ...server.records("train"),
      { key: "no-url", url: "", captions: ["a caption that is long enough"] },
      { key: "ftp", url: "ftp://example.com/x.jpg", captions: ["a caption that is long enough"] },
      { key: "short", url: server.records("train")[0].url, captions: ["two words", ""] },
    ];
    const loader = new StreamingLoader(records, { ...FAST, minSide: 16 });
    const keys = (await drain(loader)).flatMap((b) => b.keys);
    const s = loader.stats();
    assert.equal(keys.length, 10);
    assert.equal(s.failures.bad_record, 2);
    assert.equal(s.failures.short_caption, 1);
    assert.ok(s.imagesPerSecond > 0 && s.bytesPerSecond > 0 && s.bytes > 0);
    assert.ok(s.waitShare >= 0 && s.waitShare <= 1);
  } finally {
    await server.close();
  }
});

Deno.test("the disk cache makes the second epoch download nothing and stays under its cap", async () => {
  const server = await startScenesServer({ seed: 8, width: 48, counts: { train: 24 } });
  const dir = await Deno.makeTempDir({ prefix: "data_cache_" });
  try {
    const records = server.records("train");
    const cache = await DiskCache.open(dir);
    await drain(new StreamingLoader(records, { ...FAST, minSide: 16, cache }));
    const requests = server.requests();
    const loader = new StreamingLoader(records, { ...FAST, minSide: 16, cache, seed: 2 });
    assert.equal((await drain(loader)).flatMap((b) => b.keys).length, 24);
    assert.equal(server.requests(), requests, "no request in the second epoch");
    assert.equal(loader.stats().cacheHits, 24);
    await cache.flush();
    const reopened = await DiskCache.open(dir, cache.size / 2);
    assert.ok(reopened.size <= cache.size);
    await reopened.put("http://x/new", new Uint8Array(10));
    assert.ok(reopened.size <= cache.size / 2, "evicted down to the cap");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
