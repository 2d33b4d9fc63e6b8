/**
 * Loader throughput: download + decode + augment + batch from the local scenes server, 640x480 JPEGs to
 * 224x224 batches, with 1 decode worker and with one per core; then the trainer's wait share when it
 * consumes at a fixed rate below the loader's throughput. Writes bench/results/data.json.
 *
 *   deno run -A bench/data.ts
 */
import { type Batch, type CaptionRecord, StreamingLoader } from "../data/mod.ts";
import { startScenesServer } from "../data/scenes_server.ts";

const RESULTS = new URL("./results/data.json", import.meta.url);
const IMAGES = 192;
const BATCH = 16;

/** Images per second over `batches` batches after the first (which pays for worker start-up). */
async function throughput(urls: CaptionRecord[], workers: number, level: number, batches: number) {
  const loader = new StreamingLoader(urls, {
    batchSize: BATCH,
    workers,
    epochs: Infinity,
    augment: { level },
  });
  let n = 0, start = 0;
  for await (const batch of loader) {
    if (n === 0) start = performance.now();
    else if (n >= batches) break;
    n++;
    checkBatch(batch);
  }
  const seconds = (performance.now() - start) / 1000;
  return { workers, augmentLevel: level, imagesPerSecond: round((batches * BATCH) / seconds) };
}

/** The consumer takes a batch, then "trains" for BATCH / rate seconds; steady state excludes the first batch. */
async function waitShare(urls: CaptionRecord[], rate: number, batches: number) {
  const loader = new StreamingLoader(urls, { batchSize: BATCH, epochs: Infinity });
  let n = 0, wait0 = 0, t0 = 0;
  for await (const _ of loader) {
    if (n === 0) [wait0, t0] = [loader.stats().waitSeconds, performance.now()];
    if (++n > batches) break;
    await new Promise((r) => setTimeout(r, (1000 * BATCH) / rate));
  }
  const s = loader.stats();
  return {
    consumerImagesPerSecond: round(rate),
    waitShare: round((s.waitSeconds - wait0) / ((performance.now() - t0) / 1000), 4),
    waitShareIncludingStartup: round(s.waitShare, 4),
  };
}

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

function checkBatch(batch: Batch) {
  if (batch.shape[2] !== 224 || batch.images.length !== batch.shape.reduce((a, b) => a * b)) {
    throw new Error(`bad batch shape ${batch.shape}`);
  }
}

export async function benchData() {
  const cores = navigator.hardwareConcurrency;
  const server = await startScenesServer({ width: 640, height: 480, counts: { train: IMAGES }, quality: 90 });
  try {
    const urls = server.records("train");
    // Render every image once so the timed runs measure the loader, not the scene renderer.
    await Promise.all(urls.map((r) => fetch(r.url).then((res) => res.arrayBuffer())));
    const jpegBytes = (await (await fetch(urls[0].url)).arrayBuffer()).byteLength;
    const one = await throughput(urls, 1, 0, 12);
    const all = await throughput(urls, cores, 0, 12);
    const augmented = await throughput(urls, cores, 1, 12);
    const waits = [
      await waitShare(urls, 0.5 * all.imagesPerSecond, 12),
      await waitShare(urls, 0.8 * all.imagesPerSecond, 12),
    ];
    const results = {
      date: new Date().toISOString(),
      deno: Deno.version.deno,
      cores,
      source: `scenes server, ${IMAGES} JPEGs of 640x480 (~${
        Math.round(jpegBytes / 1024)
      } KB), batches of ${BATCH}`,
      throughput: [one, all, augmented],
      trainerWait: waits,
      targets: {
        atLeast50ImagesPerSecond: all.imagesPerSecond >= 50,
        waitUnder5Percent: waits.every((w) => w.waitShare < 0.05),
      },
    };
    for (const t of results.throughput) {
      console.log(
        `data: ${t.workers} worker(s), augment ${t.augmentLevel}: ${t.imagesPerSecond} images/s at 224`,
      );
    }
    for (const w of waits) {
      console.log(
        `data: consumer at ${w.consumerImagesPerSecond} images/s waits ${(100 * w.waitShare).toFixed(1)}%`,
      );
    }
    await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
    await Deno.writeTextFile(RESULTS, JSON.stringify(results, null, 2) + "\n");
    return results;
  } finally {
    await server.close();
  }
}

if (import.meta.main) await benchData();
