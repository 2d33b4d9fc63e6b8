// One image's trip from bytes to a normalised [3,H,W] tensor, with the checks that turn bad bytes into a
// counted failure reason. Runs inside the decode workers; a plain function so tests can call it directly.
import type { AugmentPlan } from "./augment.ts";
import { decodeRgb } from "./codecs.ts";
import { sniffDimensions, sniffType } from "./sniff.ts";
import { normalise, photometric, resample } from "./transform.ts";
import type { FailureReason } from "./types.ts";

export interface DecodeJob {
  id: number;
  bytes: Uint8Array;
  /** Output side; 0 only validates (decodes, checks, returns the size but no pixels). */
  size: number;
  maxPixels: number;
  minSide: number;
  mean: readonly number[];
  std: readonly number[];
  plan: AugmentPlan;
}

export type DecodeResult =
  | { id: number; ok: true; pixels?: Float32Array; width: number; height: number }
  | { id: number; ok: false; reason: FailureReason; message: string };

export async function runDecodeJob(job: DecodeJob): Promise<DecodeResult> {
  const fail = (reason: FailureReason, message: string): DecodeResult => ({
    id: job.id,
    ok: false,
    reason,
    message,
  });
  if (!sniffType(job.bytes)) return fail("not_image", "bytes are not a JPEG, PNG, GIF, TIFF or WebP image");
  const dims = sniffDimensions(job.bytes);
  if (!dims) return fail("decode_error", "unreadable image header");
  const { width, height } = dims;
  // Checked on the header, before decoding: a bomb never gets to allocate its pixels.
  if (width * height > job.maxPixels) {
    return fail("too_large", `${width}x${height} exceeds ${job.maxPixels} pixels`);
  }
  if (Math.min(width, height) < job.minSide) {
    return fail("too_small", `${width}x${height} under ${job.minSide} px`);
  }
  const need = Math.ceil(job.size * job.plan.zoom);
  const scale = job.size ? need / Math.min(width, height) : 1;
  try {
    const atLeast = { width: Math.ceil(width * scale), height: Math.ceil(height * scale) };
    const rgb = await decodeRgb(job.bytes, scale < 1 ? atLeast : undefined);
    if (!job.size) return { id: job.id, ok: true, width, height };
    const hwc = await photometric(resample(rgb, job.size, job.plan), job.size, job.plan);
    return { id: job.id, ok: true, pixels: normalise(hwc, job.size, job.mean, job.std), width, height };
  } catch (e) {
    return fail("decode_error", e instanceof Error ? e.message : String(e));
  }
}
