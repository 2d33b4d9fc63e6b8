// The scenes world over HTTP (Deno.serve on 127.0.0.1, a free port), so the built-in dataset goes through
// exactly the download path that web-scale data does, faults included. Each record's fault is fixed by
// the seed, so a test knows which records are healthy and why the others must fail.
import { encodeRgb } from "./codecs.ts";
import { rng } from "./rng.ts";
import { makeScene, renderScene, type Scene, type Split, SPLITS } from "./scenes.ts";
import type { CaptionRecord, FailureReason } from "./types.ts";

/** The reason a loader must report for each fault; `flaky` (one 503, then fine) must be delivered. */
export const FAULT_REASONS = {
  notFound: "http_status",
  serverError: "http_status",
  slow: "timeout", // headers and half the body, then a stall
  hang: "timeout", // no response at all
  truncated: "decode_error",
  notImage: "not_image",
  oversized: "too_large", // streamed without Content-Length
  redirectLoop: "redirects",
  tiny: "too_small", // 16 x 16 pixels
  bomb: "too_large", // a header promising 30000 x 30000 pixels
  flaky: undefined,
} as const satisfies Record<string, FailureReason | undefined>;
export type Fault = keyof typeof FAULT_REASONS;

export interface ScenesOptions {
  seed?: number;
  width?: number;
  height?: number;
  counts?: Partial<Record<Split, number>>;
  format?: "jpeg" | "png";
  quality?: number;
  /** Share of records with each fault, e.g. { notFound: 0.05, slow: 0.02 }. */
  faults?: Partial<Record<Fault, number>>;
  /** How long slow and hanging responses stall (they end early when the client gives up). */
  stallMs?: number;
  oversizedBytes?: number;
  /** Encoded images kept in memory; rendering is the server's main cost. */
  cacheImages?: number;
  port?: number;
}

export interface ScenesServer {
  url: string;
  /** JSONL manifest of a split: {key, url, captions} per line. */
  manifestUrl: (split: Split) => string;
  records: (split: Split) => CaptionRecord[];
  scene: (split: Split, index: number) => Scene;
  faultOf: (key: string) => Fault | undefined;
  requests: () => number;
  close: () => Promise<void>;
}

const keyOf = (split: Split, i: number) => `${split}-${String(i).padStart(6, "0")}`;

export async function startScenesServer(options: ScenesOptions = {}): Promise<ScenesServer> {
  const seed = options.seed ?? 0, width = options.width ?? 96, height = options.height ?? width;
  const counts = { train: 1000, val: 100, test: 100, ...options.counts };
  const format = options.format ?? "jpeg", ext = format === "jpeg" ? "jpg" : "png";
  const stallMs = options.stallMs ?? 60_000, cacheSize = options.cacheImages ?? 4096;
  const closing = new AbortController(),
    cache = new Map<string, Uint8Array<ArrayBuffer>>(),
    served = new Map<string, number>();
  let requests = 0;

  const faultOf = (split: Split, i: number): Fault | undefined => {
    let u = rng(seed, "fault", split, i)();
    for (const [fault, rate] of Object.entries(options.faults ?? {})) {
      if ((u -= rate ?? 0) < 0) return fault as Fault;
    }
  };
  const image = async (split: Split, i: number, side?: number) => {
    const id = `${split}/${i}/${side ?? ""}`;
    let bytes = cache.get(id);
    if (!bytes) {
      const scene = makeScene(seed, split, i, width / height);
      bytes = await encodeRgb(
        renderScene(scene, side ?? width, side ?? height),
        format,
        options.quality ?? 90,
      );
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!);
      cache.set(id, bytes);
    }
    return bytes;
  };
  // Stalls end at stallMs or when the server closes; request.signal is not used because Deno.serve
  // also aborts it after a successful response.
  const stall = (signal?: AbortSignal) =>
    new Promise<void>((resolve) => {
      const both = signal ? AbortSignal.any([signal, closing.signal]) : closing.signal;
      const timer = setTimeout(resolve, stallMs);
      both.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
  const contentType = { "content-type": `image/${format}` };

  const respond = async (split: Split, i: number): Promise<Response> => {
    const fault = faultOf(split, i);
    const key = keyOf(split, i);
    switch (fault) {
      case "notFound":
        return new Response("not found", { status: 404 });
      case "serverError":
        return new Response("internal error", { status: 500 });
      case "flaky":
        served.set(key, (served.get(key) ?? 0) + 1);
        if (served.get(key) === 1) return new Response("try again", { status: 503 });
        break;
      case "hang":
        await stall();
        return new Response("too late", { status: 504 });
      case "redirectLoop":
        return new Response(null, {
          status: 302,
          headers: { location: `/loop/${split}/${i}/${Date.now()}` },
        });
      case "notImage":
        return new Response("<!doctype html><title>Login</title>", { headers: contentType });
      case "tiny":
        return new Response(await image(split, i, 16), { headers: contentType });
      case "truncated": {
        const bytes = await image(split, i);
        return new Response(bytes.slice(0, Math.floor(bytes.length * 0.4)), { headers: contentType });
      }
      case "bomb":
        return new Response(bomb(await image(split, i), format), { headers: contentType });
      case "oversized":
        return new Response(endless(await image(split, i), options.oversizedBytes ?? 21 * 2 ** 20), {
          headers: contentType,
        });
      case "slow": {
        const bytes = await image(split, i), gaveUp = new AbortController();
        const body = new ReadableStream({
          start: (c) => c.enqueue(bytes.slice(0, bytes.length >> 1)),
          async pull(c) {
            await stall(gaveUp.signal);
            if (!gaveUp.signal.aborted) c.enqueue(bytes.slice(bytes.length >> 1)), c.close();
          },
          cancel: () => gaveUp.abort(),
        }, { highWaterMark: 0 });
        return new Response(body, { headers: contentType });
      }
    }
    return new Response(await image(split, i), { headers: contentType });
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen() {} },
    async (request) => {
      requests++;
      const path = new URL(request.url).pathname;
      const img = /^\/img\/(train|val|test)\/(\d+)\.(jpg|png)$/.exec(path);
      const loop = /^\/loop\/(train|val|test)\/(\d+)\/\d+$/.exec(path);
      const manifest = /^\/manifest\/(train|val|test)\.jsonl$/.exec(path);
      if (loop) {
        return new Response(null, {
          status: 302,
          headers: { location: `/loop/${loop[1]}/${loop[2]}/${requests}` },
        });
      }
      if (manifest) {
        const lines = records(manifest[1] as Split).map((r) => JSON.stringify(r)).join("\n") + "\n";
        return new Response(lines, { headers: { "content-type": "application/jsonl" } });
      }
      if (img && Number(img[2]) < counts[img[1] as Split]) {
        return await respond(img[1] as Split, Number(img[2]));
      }
      return new Response("not found", { status: 404 });
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  await image("train", 0).catch(async (e) => { // fail here, not as a stream of 500s, if encoding is broken
    await server.shutdown();
    throw new Error(`scenes server: cannot encode images: ${e}`);
  });

  const records = (split: Split): CaptionRecord[] =>
    Array.from({ length: counts[split] }, (_, i) => ({
      key: keyOf(split, i),
      url: `${url}/img/${split}/${i}.${ext}`,
      captions: makeScene(seed, split, i, width / height).captions,
      width,
      height,
    }));

  return {
    url,
    manifestUrl: (split) => `${url}/manifest/${split}.jsonl`,
    records,
    scene: (split, i) => makeScene(seed, split, i, width / height),
    faultOf: (key) => {
      const m = /^(train|val|test)-(\d+)$/.exec(key);
      return m && SPLITS.includes(m[1] as Split) ? faultOf(m[1] as Split, Number(m[2])) : undefined;
    },
    requests: () => requests,
    close: async () => {
      closing.abort();
      await server.shutdown();
    },
  };
}

/** A valid image whose header claims 30000 x 30000 pixels: decoding it would need 3.6 GB. */
function bomb(bytes: Uint8Array<ArrayBuffer>, format: "jpeg" | "png"): Uint8Array<ArrayBuffer> {
  const out = bytes.slice(), view = new DataView(out.buffer);
  if (format === "png") {
    view.setUint32(16, 30000), view.setUint32(20, 30000);
    return out;
  }
  for (let i = 2; i + 9 < out.length;) {
    const marker = out[i + 1];
    if (marker >= 0xc0 && marker <= 0xc3) {
      view.setUint16(i + 5, 30000), view.setUint16(i + 7, 30000);
      break;
    }
    i += 2 + view.getUint16(i + 2);
  }
  return out;
}

/** An image followed by filler, streamed in chunks without Content-Length until `size` bytes. */
function endless(head: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  const filler = new Uint8Array(64 * 1024);
  return new ReadableStream({
    pull(c) {
      const chunk = sent === 0 ? head : filler.subarray(0, Math.min(filler.length, size - sent));
      if (sent >= size) return c.close();
      sent += chunk.length;
      c.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}
