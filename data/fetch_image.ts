// Downloading one image without ever hanging: every attempt is bounded by a connect timeout (until the
// response headers) and a total timeout (until the last byte), redirects are followed by hand so they
// can be counted, and the byte cap is enforced while streaming because Content-Length may lie or be absent.
import { RecordError } from "./types.ts";

export interface FetchOptions {
  connectTimeoutMs?: number;
  totalTimeoutMs?: number;
  /** Extra attempts after a timeout or a 5xx; 4xx and other failures are final. */
  retries?: number;
  /** First backoff; doubles per retry, with jitter in [0.5, 1.5). */
  backoffMs?: number;
  maxRedirects?: number;
  maxBytes?: number;
  /** Aborts everything (the loader closing). */
  signal?: AbortSignal;
}

export const FETCH_DEFAULTS = {
  connectTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  retries: 3,
  backoffMs: 250,
  maxRedirects: 5,
  maxBytes: 20 * 1024 * 1024,
};

export interface Fetched {
  bytes: Uint8Array;
  attempts: number;
}

const retryable = (e: unknown) =>
  e instanceof RecordError && (e.reason === "timeout" || /^HTTP 5\d\d/.test(e.message));

/** Download `url` (http, https or file) within the limits of `options`; failures throw RecordError. */
export async function fetchImage(url: string, options: FetchOptions = {}): Promise<Fetched> {
  const opts = { ...FETCH_DEFAULTS, ...options };
  for (let attempt = 1;; attempt++) {
    try {
      return { bytes: await attemptFetch(url, opts), attempts: attempt };
    } catch (e) {
      if (attempt > opts.retries || !retryable(e) || opts.signal?.aborted) throw e;
      const delay = opts.backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random());
      await sleep(delay, opts.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

async function attemptFetch(url: string, opts: typeof FETCH_DEFAULTS & FetchOptions): Promise<Uint8Array> {
  if (url.startsWith("file:")) return await readFileCapped(url, opts.maxBytes);
  if (!/^https?:\/\//.test(url)) throw new RecordError("bad_record", `unsupported URL "${url.slice(0, 80)}"`);
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([controller.signal, opts.signal]) : controller.signal;
  let phase = "connect";
  const timeout = (ms: number, what: string) =>
    setTimeout(() => controller.abort(new RecordError("timeout", `${what} timeout after ${ms} ms`)), ms);
  const total = timeout(opts.totalTimeoutMs, "total");
  try {
    let current = url;
    for (let hops = 0;; hops++) {
      const connect = timeout(opts.connectTimeoutMs, "connect");
      const response = await fetch(current, { redirect: "manual", signal }).finally(() =>
        clearTimeout(connect)
      );
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        if (hops >= opts.maxRedirects) {
          throw new RecordError("redirects", `more than ${opts.maxRedirects} redirects`);
        }
        current = new URL(location, current).href;
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new RecordError("http_status", `HTTP ${response.status}`);
      }
      const declared = Number(response.headers.get("content-length") ?? NaN);
      if (declared > opts.maxBytes) {
        await response.body?.cancel();
        throw new RecordError("too_large", `Content-Length ${declared} exceeds ${opts.maxBytes} bytes`);
      }
      phase = "body";
      return await readCapped(response.body, opts.maxBytes);
    }
  } catch (e) {
    if (e instanceof RecordError) throw e;
    const reason = signal.reason;
    if (signal.aborted && reason instanceof RecordError) throw reason;
    if (signal.aborted) throw new RecordError("network", "aborted");
    throw new RecordError("network", `${phase}: ${e instanceof Error ? e.message : e}`);
  } finally {
    clearTimeout(total);
  }
}

/** Read a body into one array, abandoning it as soon as it passes `maxBytes`. */
async function readCapped(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > maxBytes) throw new RecordError("too_large", `body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return concat(chunks, size);
}

export function concat(chunks: Uint8Array[], size = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) out.set(c, offset), offset += c.length;
  return out;
}

async function readFileCapped(url: string, maxBytes: number): Promise<Uint8Array> {
  try {
    const path = new URL(url);
    const { size } = await Deno.stat(path);
    if (size > maxBytes) throw new RecordError("too_large", `file of ${size} bytes exceeds ${maxBytes}`);
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof RecordError) throw e;
    throw new RecordError("bad_record", `cannot read ${url}: ${e instanceof Error ? e.message : e}`);
  }
}
