/**
 * data/: url-caption records in, normalised image batches out.
 *
 * ```ts
 * const server = await startScenesServer({ width: 96, counts: { train: 5000 } });
 * const loader = new StreamingLoader(server.records("train"), {
 *   batchSize: 32, imageSize: 64, minSide: 32, epochs: Infinity, seed: 1,
 * });
 * for await (const batch of loader) {
 *   const x = tensor(batch.images, batch.shape); // the trainer converts; data/ never imports tensor/
 *   loader.setAugmentLevel(rampLevel(step / totalSteps));
 *   checkpoint.data = loader.state(); // new StreamingLoader(records, { resume: state }) continues here
 * }
 * console.log(formatStats(loader.stats()));
 * loader.close(); await server.close();
 * ```
 *
 * Contracts:
 * - A `Batch` is `{ images: Float32Array [B,3,H,W] row-major, shape, captions (one per image, drawn
 *   from its references), references, keys, epoch }`. Images are normalised exactly once, with
 *   `mean` / `std` (ImageNet by default): the model must not normalise again.
 * - Each healthy record is delivered exactly once per epoch, per (rank, worker) part; every other record
 *   is counted under one `FailureReason` in `stats().failures`. `state()` taken between batches resumes
 *   with no record repeated or lost.
 * - Everything random (order, caption choice, augmentation) is a function of `seed`, the epoch and the
 *   record key, never of timing or worker count.
 * - `minSide` defaults to 150 px (web data); the small synthetic scenes need it lowered to their size.
 * - The main thread never decodes: images are decoded in a pool of Web Workers (`workers`, default
 *   the number of cores).
 */
export type { Batch, CaptionRecord, FailureReason } from "./types.ts";
export { FAILURE_REASONS, IMAGENET_MEAN, IMAGENET_STD, RecordError } from "./types.ts";

export { arraySource, StreamingLoader } from "./loader.ts";
export type { ImageCache, LoaderOptions, LoaderState, RecordSource, Sample } from "./loader.ts";
export { formatStats, type LoaderStats } from "./stats.ts";
export { DiskCache } from "./cache.ts";
export { DecodePool } from "./pool.ts";
export { FETCH_DEFAULTS, fetchImage, type FetchOptions } from "./fetch_image.ts";

export {
  parseCoco,
  parseFlickrTokens,
  parseJsonl,
  parseKarpathy,
  readRecords,
  rowToRecord,
} from "./records.ts";
export type { RecordOptions } from "./records.ts";
export { formatDelimited, parseDelimited, parseTable } from "./csv.ts";
export { parquetColumns, readParquetRows } from "./parquet.ts";
export { cleanCaption, cleanCaptions, sentences, wordCount } from "./clean.ts";

export {
  type AugmentOptions,
  type AugmentPlan,
  flipCaption,
  IDENTITY_PLAN,
  planAugment,
  rampLevel,
} from "./augment.ts";
export { type DecodeJob, type DecodeResult, runDecodeJob } from "./decode_job.ts";
export { epochOrder, partOf, type ShardSpec, shuffleBuffer } from "./shuffle.ts";
export { hash32, permutation, rng } from "./rng.ts";

export { expandBraces, readShard, sampleToRecord, ShardWriter, webDatasetSource } from "./webdataset.ts";
export type { WebDatasetSample } from "./webdataset.ts";
export { readTar, TAR_END, tarEntry } from "./tar.ts";
export { download, type DownloadSummary } from "./download_task.ts";

export {
  COLOURS,
  makeScene,
  RELATIONS,
  renderScene,
  type Scene,
  SHAPES,
  SIZES,
  type Split,
  SPLITS,
} from "./scenes.ts";
export {
  type Fault,
  FAULT_REASONS,
  type ScenesOptions,
  type ScenesServer,
  startScenesServer,
} from "./scenes_server.ts";
export { decodeRgb, encodeRgb, type Rgb } from "./codecs.ts";
export { sniffDimensions, sniffType } from "./sniff.ts";
