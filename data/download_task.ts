// `deno task download manifest out/`: a url-caption manifest in any supported format becomes WebDataset
// shards, through the same loader (downloads, checks, decode validation) that training uses.
import { parseArgs } from "node:util";
import { StreamingLoader } from "./loader.ts";
import { readRecords } from "./records.ts";
import type { FailureReason } from "./types.ts";
import { imageExtension, ShardWriter } from "./webdataset.ts";

export interface DownloadSummary {
  manifest: string;
  out: string;
  recordsRead: number;
  samplesWritten: number;
  shards: string[];
  failures: Record<FailureReason, number>;
  bytesDownloaded: number;
  seconds: number;
}

export const USAGE = `usage: deno task download <manifest> <out-dir> [options]
  manifest: .parquet, .jsonl, .csv, .tsv, .json (Karpathy / COCO / rows) or a Flickr .token file
  --caption-column NAME   caption column (default: cogvlm_caption, llava_caption, caption, text)
  --image-root DIR        image folder for manifests that name files (Flickr, COCO)
  --shard-size N          samples per shard (default 10000)
  --concurrency N         downloads in flight (default 64)
  --max-bytes N           per-image byte cap (default 20 MB)
  --min-side N            smallest accepted image side (default 150)
  --timeout MS            total timeout per attempt (default 30000)
  --retries N             retries after timeouts and 5xx (default 3)
  --json                  print the summary as one JSON object`;

export async function download(args: string[]): Promise<DownloadSummary> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "caption-column": { type: "string" },
      "image-root": { type: "string" },
      "shard-size": { type: "string", default: "10000" },
      concurrency: { type: "string", default: "64" },
      "max-bytes": { type: "string", default: String(20 * 1024 * 1024) },
      "min-side": { type: "string", default: "150" },
      timeout: { type: "string", default: "30000" },
      retries: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
    },
  });
  if (positionals.length !== 2) throw new Error(USAGE);
  const [manifest, out] = positionals;
  const int = (name: keyof typeof values) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`--${name} needs a non-negative integer, got "${values[name]}"`);
    }
    return n;
  };
  const start = performance.now();
  const records = await readRecords(manifest, {
    captionColumn: values["caption-column"],
    imageRoot: values["image-root"],
  });
  const loader = new StreamingLoader(records, {
    imageSize: 0, // validate (decode, size checks) without producing pixels
    keepBytes: true,
    shuffle: false,
    concurrency: int("concurrency"),
    maxBytes: int("max-bytes"),
    minSide: int("min-side"),
    totalTimeoutMs: int("timeout"),
    retries: int("retries"),
  });
  const writer = new ShardWriter(out, { maxSamples: Math.max(1, int("shard-size")) });
  let written = 0;
  try {
    for await (const s of loader.samples()) {
      const meta = { key: s.key, url: s.url, captions: s.references, width: s.width, height: s.height };
      await writer.write(s.key, {
        [imageExtension(s.bytes!)]: s.bytes!,
        txt: new TextEncoder().encode(s.caption),
        json: new TextEncoder().encode(JSON.stringify(meta)),
      });
      written++;
    }
  } finally {
    await writer.close();
    loader.close();
  }
  const stats = loader.stats();
  return {
    manifest,
    out,
    recordsRead: records.length,
    samplesWritten: written,
    shards: writer.shards,
    failures: stats.failures,
    bytesDownloaded: stats.bytes,
    seconds: (performance.now() - start) / 1000,
  };
}

export function formatSummary(s: DownloadSummary): string {
  const lines = [
    `records read     ${s.recordsRead}`,
    `samples written  ${s.samplesWritten} in ${s.shards.length} shard(s) under ${s.out}`,
    `downloaded       ${(s.bytesDownloaded / 1e6).toFixed(1)} MB in ${s.seconds.toFixed(1)} s`,
  ];
  for (const [reason, n] of Object.entries(s.failures)) if (n) lines.push(`  ${reason.padEnd(15)}${n}`);
  return lines.join("\n");
}
