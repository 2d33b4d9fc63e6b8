// WebDataset shards: tar files where consecutive entries sharing a key ({key}.jpg, {key}.txt,
// {key}.json) form one sample. It is the layout img2dataset writes, so data pre-downloaded on a cluster
// streams straight into the loader.
import type { RecordSource } from "./loader.ts";
import { rng } from "./rng.ts";
import { epochOrder, partOf, shuffleBuffer } from "./shuffle.ts";
import { sniffType } from "./sniff.ts";
import { readTar, TAR_END, tarEntry } from "./tar.ts";
import type { CaptionRecord } from "./types.ts";

export interface WebDatasetSample {
  key: string;
  shard: string;
  /** Entry contents by extension: "jpg", "txt", "json", ... */
  files: Record<string, Uint8Array>;
}

/** Expand "{00000..00099}" ranges (zero padding kept) and "{a,b}" lists, as in the WebDataset docs. */
export function expandBraces(pattern: string): string[] {
  const m = /\{([^{}]*)\}/.exec(pattern);
  if (!m) return [pattern];
  const range = /^(\d+)\.\.(\d+)$/.exec(m[1]);
  let options: string[];
  if (range) {
    const [lo, hi] = [Number(range[1]), Number(range[2])], width = range[1].length;
    if (hi < lo) throw new Error(`bad range {${m[1]}} in ${pattern}`);
    options = Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i).padStart(width, "0"));
  } else options = m[1].split(",");
  const [head, tail] = [pattern.slice(0, m.index), pattern.slice(m.index + m[0].length)];
  return options.flatMap((o) => expandBraces(head + o + tail));
}

/** A shard's bytes as a stream: local path, file: URL, or http(s) URL. */
export async function openShard(source: string, timeoutMs = 60_000): Promise<ReadableStream<Uint8Array>> {
  if (/^https?:/.test(source)) {
    const response = await fetch(source, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok || !response.body) throw new Error(`${source}: HTTP ${response.status}`);
    return response.body;
  }
  try {
    return (await Deno.open(source.startsWith("file:") ? new URL(source) : source)).readable;
  } catch (e) {
    throw new Error(`${source}: cannot open shard: ${(e as Error).message}`);
  }
}

/** Samples of one shard, grouped by key (the path up to the first dot of the file name). */
export async function* readShard(source: string): AsyncGenerator<WebDatasetSample> {
  let current: WebDatasetSample | undefined;
  for await (const { name, data } of readTar(await openShard(source), source)) {
    const slash = name.lastIndexOf("/"), dot = name.indexOf(".", slash + 1);
    if (dot < 0) continue; // not part of a sample
    const key = name.slice(0, dot), ext = name.slice(dot + 1).toLowerCase();
    if (current && current.key !== key) yield current;
    if (!current || current.key !== key) current = { key, shard: source, files: {} };
    current.files[ext] = data;
  }
  if (current) yield current;
}

const IMAGE_EXTS = ["jpg", "jpeg", "png", "gif", "tif", "tiff", "webp", "img"];
const decoder = new TextDecoder();

/** A sample as a loader record: the image bytes, and captions from .json ("captions" or "caption")
 * or else .txt (one per line). A sample without an image gets no bytes, so it counts as a bad record. */
export function sampleToRecord(sample: WebDatasetSample): CaptionRecord {
  const ext = IMAGE_EXTS.find((e) => sample.files[e]);
  let captions: string[] = [], url = "";
  if (sample.files.json) {
    try {
      const meta = JSON.parse(decoder.decode(sample.files.json));
      captions = meta.captions ?? (meta.caption ? [meta.caption] : []);
      url = meta.url ?? "";
    } catch {
      captions = []; // counted downstream as a short caption
    }
  }
  if (!captions.length && sample.files.txt) {
    captions = decoder.decode(sample.files.txt).split("\n").filter((l) => l.trim());
  }
  // The url is informational: with bytes present the loader never downloads.
  return { key: sample.key, url: ext ? url : "", captions, bytes: ext ? sample.files[ext] : undefined };
}

/** Shards as a loader source. Shards are shuffled per epoch and split across parts when there are
 * enough of them (else every part reads all shards and keeps every parts-th sample); samples then pass
 * through a shuffle buffer of `bufferSize`. */
export function webDatasetSource(shards: string | string[], bufferSize = 1000): RecordSource {
  const list = (Array.isArray(shards) ? shards : [shards]).flatMap(expandBraces);
  if (!list.length) throw new Error("webDatasetSource: no shards");
  return {
    async *records(epoch, seed, shuffle, spec) {
      const { part, parts } = partOf(spec), byShard = list.length >= parts;
      const mine = epochOrder(list.length, seed, epoch, shuffle, byShard ? spec : {});
      async function* samples() {
        let i = 0;
        for (const s of mine) {
          for await (const sample of readShard(list[s])) if (byShard || i++ % parts === part) yield sample;
        }
      }
      const stream = shuffle
        ? shuffleBuffer(samples(), bufferSize, rng(seed, "buffer", epoch, part))
        : samples();
      for await (const sample of stream) yield sampleToRecord(sample);
    },
  };
}

export interface ShardWriterOptions {
  /** Start a new shard after this many samples or bytes, whichever comes first. */
  maxSamples?: number;
  maxBytes?: number;
}

/** Writes samples to dir/00000.tar, dir/00001.tar, ... */
export class ShardWriter {
  readonly shards: string[] = [];
  #file?: Deno.FsFile;
  #samples = 0;
  #bytes = 0;
  constructor(readonly dir: string, readonly options: ShardWriterOptions = {}) {}

  async write(key: string, files: Record<string, Uint8Array>) {
    const { maxSamples = 10_000, maxBytes = 1 << 30 } = this.options;
    if (!this.#file || this.#samples >= maxSamples || this.#bytes >= maxBytes) await this.#next();
    for (const [ext, data] of Object.entries(files)) {
      const entry = tarEntry(`${key}.${ext}`, data);
      await this.#writeAll(entry);
      this.#bytes += entry.length;
    }
    this.#samples++;
  }

  async close() {
    if (!this.#file) return;
    await this.#writeAll(TAR_END);
    this.#file.close();
    this.#file = undefined;
  }

  async #next() {
    await this.close();
    await Deno.mkdir(this.dir, { recursive: true });
    const path = `${this.dir}/${String(this.shards.length).padStart(5, "0")}.tar`;
    this.#file = await Deno.open(path, { write: true, create: true, truncate: true });
    this.shards.push(path);
    this.#samples = this.#bytes = 0;
  }

  async #writeAll(bytes: Uint8Array) {
    for (let off = 0; off < bytes.length;) off += await this.#file!.write(bytes.subarray(off));
  }
}

/** File extension for image bytes, from the bytes. */
export function imageExtension(bytes: Uint8Array): string {
  const type = sniffType(bytes);
  return type === "jpeg" ? "jpg" : type === "tiff" ? "tif" : type ?? "img";
}
