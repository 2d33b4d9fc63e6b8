// Loader telemetry: enough to tell, from one line, whether training is waiting on data and why records
// are being lost.
import { FAILURE_REASONS, type FailureReason } from "./types.ts";

export interface LoaderStats {
  epoch: number;
  /** Records handed to the consumer, and records dropped (per reason). */
  delivered: number;
  failures: Record<FailureReason, number>;
  failed: number;
  /** Records started but not finished yet, and decoded samples / batches waiting for the consumer. */
  inFlight: number;
  queuedSamples: number;
  queuedBatches: number;
  /** Throughput since the loader started. */
  imagesPerSecond: number;
  bytesPerSecond: number;
  bytes: number;
  retries: number;
  cacheHits: number;
  /** Time the consumer spent waiting for data, and its share of the time since the consumer first asked. */
  waitSeconds: number;
  waitShare: number;
  elapsedSeconds: number;
}

export function emptyFailures(): Record<FailureReason, number> {
  return Object.fromEntries(FAILURE_REASONS.map((r) => [r, 0])) as Record<FailureReason, number>;
}

/** A one-line summary for logs. */
export function formatStats(s: LoaderStats): string {
  const lost = Object.entries(s.failures).filter(([, n]) => n).map(([r, n]) => `${r}=${n}`).join(" ");
  return `epoch ${s.epoch} delivered ${s.delivered} | ${s.imagesPerSecond.toFixed(1)} img/s ` +
    `${(s.bytesPerSecond / 1e6).toFixed(2)} MB/s | wait ${(100 * s.waitShare).toFixed(1)}% | ` +
    `in flight ${s.inFlight} queued ${s.queuedBatches} batches | failed ${s.failed}${
      lost ? ` (${lost})` : ""
    }`;
}
