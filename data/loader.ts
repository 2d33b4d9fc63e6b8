// The streaming loader: records in, normalised batches out. Downloads run with bounded concurrency,
// decoding runs in a worker pool, and a prefetch queue sits between them and the trainer. Every record
// ends either delivered exactly once per epoch or counted under one failure reason.
import { type AugmentOptions, IDENTITY_PLAN, planAugment } from "./augment.ts";
import { cleanCaptions } from "./clean.ts";
import { fetchImage, type FetchOptions } from "./fetch_image.ts";
import { DecodePool } from "./pool.ts";
import { pick, rng } from "./rng.ts";
import { epochOrder, partOf, type ShardSpec } from "./shuffle.ts";
import { emptyFailures, type LoaderStats } from "./stats.ts";
import {
  type Batch,
  type CaptionRecord,
  type FailureReason,
  IMAGENET_MEAN,
  IMAGENET_STD,
  RecordError,
} from "./types.ts";

/** Where records come from: each part's records for an epoch, in a deterministic order. */
export interface RecordSource {
  records(
    epoch: number,
    seed: number,
    shuffle: boolean,
    spec: ShardSpec,
  ): Iterable<CaptionRecord> | AsyncIterable<CaptionRecord>;
}

/** Content-addressed image store consulted before downloading (see cache.ts). */
export interface ImageCache {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
}

export interface LoaderOptions extends FetchOptions, ShardSpec {
  batchSize?: number;
  /** Output side in pixels; 0 validates images without producing pixels (the download task). */
  imageSize?: number;
  mean?: readonly number[];
  std?: readonly number[];
  /** Downloads in flight at once. */
  concurrency?: number;
  /** Decode workers; defaults to the number of cores. */
  workers?: number;
  /** A pool shared with other loaders (e.g. train and validation); it stays open when this one closes. */
  pool?: DecodePool;
  decodeTimeoutMs?: number;
  /** Batches kept ready ahead of the consumer. */
  prefetch?: number;
  seed?: number;
  /** Passes over the data; Infinity streams forever. */
  epochs?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  minSide?: number;
  maxPixels?: number;
  minWords?: number;
  maxSentences?: number;
  /** Augmentation settings; the level starts at `level` (default 0) and moves with setAugmentLevel. */
  augment?: AugmentOptions & { level?: number };
  cache?: ImageCache;
  /** Keep each sample's original bytes (the download task writes them to shards). */
  keepBytes?: boolean;
  /** Called for every dropped record, e.g. to log it. */
  onFailure?: (record: CaptionRecord, reason: FailureReason, message: string) => void;
  /** A state() from an earlier run: continue exactly where it stopped. */
  resume?: LoaderState;
}

/** Where the stream stands: records of `epoch` before `cursor` are done except those in `pending`. */
export interface LoaderState {
  seed: number;
  part: number;
  parts: number;
  epoch: number;
  cursor: number;
  pending: number[];
}

export interface Sample {
  key: string;
  url: string;
  epoch: number;
  caption: string;
  references: string[];
  /** [3, size, size], normalised; absent when imageSize is 0. */
  pixels?: Float32Array;
  bytes?: Uint8Array;
  width: number;
  height: number;
  seq: number;
}

const DEFAULTS = {
  batchSize: 32,
  imageSize: 224,
  mean: IMAGENET_MEAN as readonly number[],
  std: IMAGENET_STD as readonly number[],
  concurrency: 64,
  decodeTimeoutMs: 30_000,
  prefetch: 4,
  seed: 0,
  epochs: 1,
  shuffle: true,
  dropLast: false,
  minSide: 150,
  maxPixels: 64 * 1024 * 1024,
  minWords: 3,
  maxSentences: 2,
};

/** An in-memory list of records, permuted per epoch and split across parts. */
export function arraySource(records: CaptionRecord[]): RecordSource {
  return {
    *records(epoch, seed, shuffle, spec) {
      for (const i of epochOrder(records.length, seed, epoch, shuffle, spec)) yield records[i];
    },
  };
}

type Item = { kind: "sample"; sample: Sample } | { kind: "batch"; batch: Batch; seqs: number[] };

export class StreamingLoader implements AsyncIterable<Batch> {
  readonly options: typeof DEFAULTS & LoaderOptions;
  #source: RecordSource;
  #part: { part: number; parts: number };
  #pool: DecodePool;
  #abort = new AbortController();
  #level: number;

  // Production: the epoch being produced and the seqs of each epoch started but not yet delivered.
  #epoch: number;
  #cursor = 0;
  #open = new Map<number, Set<number>>();
  #inFlight = 0;
  #ready: Sample[] = []; // decoded, not yet in a batch
  #queue: Item[] = []; // waiting for the consumer
  #done = false;
  #error?: Error;
  #wake: (() => void)[] = []; // producer and consumer waiters
  #mode?: "batches" | "samples";

  #started = performance.now();
  #consumerStart?: number;
  #waitMs = 0;
  #counters = { delivered: 0, decoded: 0, bytes: 0, retries: 0, cacheHits: 0, failures: emptyFailures() };

  constructor(records: CaptionRecord[] | RecordSource, options: LoaderOptions = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.#source = Array.isArray(records) ? arraySource(records) : records;
    this.#part = partOf(this.options);
    const { mean, std } = this.options;
    if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0))) {
      throw new Error(`mean and std need 3 values each, std positive: got [${mean}] and [${std}]`);
    }
    this.#level = this.options.augment?.level ?? 0;
    const resume = this.options.resume;
    if (resume) {
      const { seed } = this.options, { part, parts } = this.#part;
      if (resume.seed !== seed || resume.part !== part || resume.parts !== parts) {
        throw new Error(
          `cannot resume: state is for seed ${resume.seed}, part ${resume.part}/${resume.parts}; ` +
            `this loader has seed ${seed}, part ${part}/${parts}`,
        );
      }
    }
    this.#epoch = resume?.epoch ?? 0;
    this.#pool = this.options.pool ?? new DecodePool(this.options.workers, this.options.decodeTimeoutMs);
  }

  /** Augmentation level in [0, 1] for records started from now on (see rampLevel). */
  setAugmentLevel(level: number) {
    this.#level = Math.min(1, Math.max(0, level));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    for await (const item of this.#consume("batches")) if (item.kind === "batch") yield item.batch;
  }

  /** Single samples instead of batches (with keepBytes, the original image bytes). */
  async *samples(): AsyncIterable<Sample> {
    for await (const item of this.#consume("samples")) if (item.kind === "sample") yield item.sample;
  }

  /** A position to resume from; records delivered before it are never delivered again this epoch. */
  state(): LoaderState {
    const { seed } = this.options, { part, parts } = this.#part;
    const epochs = [...this.#open].filter(([, seqs]) => seqs.size).map(([e]) => e);
    const epoch = Math.min(this.#epoch, ...epochs);
    // An older epoch with undelivered records: all its records were started, so its cursor is past them.
    const cursor = epoch === this.#epoch ? this.#cursor : Number.MAX_SAFE_INTEGER;
    return {
      seed,
      part,
      parts,
      epoch,
      cursor,
      pending: [...this.#open.get(epoch) ?? []].sort((a, b) => a - b),
    };
  }

  stats(): LoaderStats {
    const now = performance.now(), seconds = (now - this.#started) / 1000;
    const consumerMs = this.#consumerStart === undefined ? 0 : now - this.#consumerStart;
    const c = this.#counters;
    const batches = this.#queue.filter((i) => i.kind === "batch").length;
    return {
      epoch: this.#epoch,
      delivered: c.delivered,
      failures: { ...c.failures },
      failed: Object.values(c.failures).reduce((a, b) => a + b, 0),
      inFlight: this.#inFlight,
      queuedSamples: this.#ready.length + this.#queue.length - batches,
      queuedBatches: batches,
      imagesPerSecond: c.decoded / Math.max(seconds, 1e-9),
      bytesPerSecond: c.bytes / Math.max(seconds, 1e-9),
      bytes: c.bytes,
      retries: c.retries,
      cacheHits: c.cacheHits,
      waitSeconds: this.#waitMs / 1000,
      waitShare: consumerMs > 0 ? this.#waitMs / consumerMs : 0,
      elapsedSeconds: seconds,
    };
  }

  /** Stop downloads and workers; a consumer waiting for data sees the end of the stream. */
  close() {
    if (this.#abort.signal.aborted) return;
    this.#abort.abort();
    if (!this.options.pool) this.#pool.close();
    this.#done = true;
    this.#notify();
  }

  async *#consume(mode: "batches" | "samples"): AsyncGenerator<Item> {
    if (this.#mode) throw new Error("a StreamingLoader can be iterated only once");
    this.#mode = mode;
    this.#consumerStart = performance.now();
    this.#produce().catch((e) => (this.#error = e)).finally(() => (this.#done = true, this.#notify()));
    try {
      while (true) {
        if (!this.#queue.length && !this.#done) {
          const start = performance.now();
          while (!this.#queue.length && !this.#done) await new Promise<void>((r) => this.#wake.push(r));
          this.#waitMs += performance.now() - start;
        }
        const item = this.#queue.shift();
        if (!item) break;
        const seqs = item.kind === "batch" ? item.seqs : [item.sample.seq];
        const epoch = item.kind === "batch" ? item.batch.epoch : item.sample.epoch;
        for (const seq of seqs) this.#open.get(epoch)?.delete(seq);
        this.#counters.delivered += seqs.length;
        this.#notify();
        yield item;
      }
      if (this.#error) throw this.#error;
    } finally {
      this.close();
    }
  }

  #notify() {
    for (const wake of this.#wake.splice(0)) wake();
  }

  async #produce() {
    const { epochs, seed, shuffle, concurrency, prefetch, batchSize } = this.options;
    const resume = this.options.resume;
    for (; this.#epoch < epochs && !this.#done; this.#epoch++) {
      const epoch = this.#epoch, open = new Set<number>();
      this.#open.set(epoch, open);
      const skip = resume?.epoch === epoch ? resume : undefined;
      const redo = new Set(skip?.pending);
      let seq = 0;
      for await (const record of this.#source.records(epoch, seed, shuffle, this.options)) {
        const s = seq++;
        if (skip && s < skip.cursor && !redo.has(s)) continue; // finished before the checkpoint
        const full = () =>
          this.#inFlight >= concurrency ||
          (this.#mode === "batches"
            ? this.#queue.length >= prefetch
            : this.#queue.length >= prefetch * batchSize);
        while (full() && !this.#done) await new Promise<void>((r) => this.#wake.push(r));
        if (this.#done) return;
        this.#cursor = s + 1;
        open.add(s);
        this.#inFlight++;
        this.#load(record, epoch, s).finally(() => (this.#inFlight--, this.#notify()));
      }
      while (this.#inFlight > 0 && !this.#done) await new Promise<void>((r) => this.#wake.push(r));
      this.#flush(epoch, true);
      this.#cursor = 0;
    }
  }

  async #load(record: CaptionRecord, epoch: number, seq: number) {
    try {
      const sample = await this.#sample(record, epoch, seq);
      this.#counters.decoded++;
      this.#ready.push(sample);
      this.#flush(epoch, false);
    } catch (e) {
      if (this.#done) return;
      const error = e instanceof RecordError ? e : new RecordError("decode_error", String(e));
      this.#counters.failures[error.reason]++;
      this.#open.get(epoch)?.delete(seq);
      this.options.onFailure?.(record, error.reason, error.message);
    }
  }

  async #sample(record: CaptionRecord, epoch: number, seq: number): Promise<Sample> {
    const o = this.options;
    if (!record || typeof record.key !== "string" || !Array.isArray(record.captions)) {
      throw new RecordError("bad_record", "record lacks a key or a captions list");
    }
    if (!record.url && !record.bytes) throw new RecordError("bad_record", "record has neither url nor bytes");
    const cleaned = cleanCaptions(record.captions, o.minWords, o.maxSentences);
    if (!cleaned.length) throw new RecordError("short_caption", `no caption of ${o.minWords}+ words`);
    const bytes = record.bytes ?? await this.#download(record.url);
    const { plan, references } = o.imageSize && this.#level > 0
      ? planAugment(rng(o.seed, "augment", epoch, record.key), this.#level, cleaned, o.augment)
      : { plan: IDENTITY_PLAN, references: cleaned };
    const result = await this.#pool.run({
      id: seq,
      bytes,
      size: o.imageSize,
      maxPixels: o.maxPixels,
      minSide: o.minSide,
      mean: o.mean,
      std: o.std,
      plan,
    });
    if (!result.ok) throw new RecordError(result.reason, result.message);
    if (o.cache && record.url && !record.bytes) await o.cache.put(record.url, bytes);
    return {
      key: record.key,
      url: record.url,
      epoch,
      seq,
      caption: pick(rng(o.seed, "caption", epoch, record.key), references),
      references,
      pixels: result.pixels,
      bytes: o.keepBytes ? bytes : undefined,
      width: result.width,
      height: result.height,
    };
  }

  async #download(url: string): Promise<Uint8Array> {
    const cached = await this.options.cache?.get(url);
    if (cached) {
      this.#counters.cacheHits++;
      return cached;
    }
    const { bytes, attempts } = await fetchImage(url, { ...this.options, signal: this.#abort.signal });
    this.#counters.retries += attempts - 1;
    this.#counters.bytes += bytes.length;
    return bytes;
  }

  /** Move ready samples to the consumer's queue: in batches of batchSize, the last one at epoch end. */
  #flush(epoch: number, epochEnd: boolean) {
    if (this.#mode === "samples") {
      for (const sample of this.#ready.splice(0)) this.#queue.push({ kind: "sample", sample });
    } else {
      const { batchSize, dropLast } = this.options;
      while (this.#ready.length >= batchSize) {
        this.#queue.push(this.#batch(this.#ready.splice(0, batchSize), epoch));
      }
      if (epochEnd && this.#ready.length) {
        const rest = this.#ready.splice(0);
        if (dropLast) { for (const s of rest) this.#open.get(epoch)?.delete(s.seq); }
        else this.#queue.push(this.#batch(rest, epoch));
      }
    }
    this.#notify();
  }

  #batch(samples: Sample[], epoch: number): Item {
    const size = this.options.imageSize, per = 3 * size * size;
    const images = new Float32Array(samples.length * per);
    samples.forEach((s, i) => s.pixels && images.set(s.pixels, i * per));
    const batch: Batch = {
      images,
      shape: [samples.length, 3, size, size],
      captions: samples.map((s) => s.caption),
      references: samples.map((s) => s.references),
      keys: samples.map((s) => s.key),
      epoch,
    };
    return { kind: "batch", batch, seqs: samples.map((s) => s.seq) };
  }
}
