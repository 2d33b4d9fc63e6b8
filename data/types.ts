// The shapes that cross module boundaries in data/. Kept free of imports so that the decode worker,
// the server and the trainer can all depend on them cheaply.

/** One url-caption pair as read from a manifest. Readers keep malformed rows (empty url, no caption)
 * so that the loader can count them as `bad_record` instead of dropping them silently. */
export interface CaptionRecord {
  key: string;
  /** http(s) or file: URL of the image; empty when the record carries `bytes` or is malformed. */
  url: string;
  /** Reference captions, raw (the loader cleans them). */
  captions: string[];
  /** Already-downloaded image bytes (WebDataset shards); no download when present. */
  bytes?: Uint8Array;
  width?: number;
  height?: number;
}

/** A batch ready for the model. `images` is [B,3,H,W] row-major, normalised exactly once. */
export interface Batch {
  images: Float32Array;
  shape: [number, number, number, number];
  /** One caption per image, drawn (deterministically) from its references. */
  captions: string[];
  references: string[][];
  keys: string[];
  epoch: number;
}

/** Why a record never became a sample. Every dropped record is counted under exactly one reason. */
export const FAILURE_REASONS = [
  "timeout",
  "http_status",
  "redirects",
  "network",
  "too_large",
  "not_image",
  "decode_error",
  "too_small",
  "short_caption",
  "bad_record",
] as const;
export type FailureReason = typeof FAILURE_REASONS[number];

/** A failure the loader can attribute to one record: caught, counted, and the stream moves on. */
export class RecordError extends Error {
  constructor(readonly reason: FailureReason, message: string) {
    super(message);
    this.name = "RecordError";
  }
}

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];
