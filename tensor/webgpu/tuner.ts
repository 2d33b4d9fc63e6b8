// Measured kernel choices, per adapter. The first call of a shape class times every candidate on
// the GPU (timestamp queries, or queue completion where the adapter has none); the fastest wins
// from then on. Winners persist in a cache file per adapter, keyed by the adapter's description
// and a hash of the candidates' WGSL, so a kernel change re-tunes and nothing is tuned twice. A
// shipped table (kernels/tuned/<adapter>.json) seeds the cache.
//
// CAPTIONER_TUNE=0 turns measuring off (defaults are used where nothing is known);
// CAPTIONER_CACHE_DIR moves the cache (default: $XDG_CACHE_HOME or ~/.cache, then /captioner).

import { gpu } from "../storage.ts";
import type { Dispatch } from "./runtime.ts";

interface Entry {
  winner: string;
  hash: string;
  ms?: Record<string, number>;
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "adapter";

class Tuner {
  enabled = (Deno.env.get("CAPTIONER_TUNE") ?? "1") !== "0";
  #entries: Map<string, Entry> | null = null;
  #verified = new Set<string>();
  #pending = new Map<string, Promise<void>>();

  get adapterSlug(): string {
    return slug(gpu().adapter.description);
  }

  get cacheFile(): string {
    const base = Deno.env.get("CAPTIONER_CACHE_DIR") ??
      `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`}/captioner`;
    return `${base}/kernels-${this.adapterSlug}.json`;
  }

  get shippedFile(): URL {
    return new URL(`../../kernels/tuned/${this.adapterSlug}.json`, import.meta.url);
  }

  /** The known winner for `key` whose candidates still hash the same, else null. */
  winner(key: string, codes: () => string[]): string | null {
    const e = this.#load().get(key);
    if (!e) return null;
    if (!this.#verified.has(key)) {
      if (e.hash !== fnv1a(codes().join("\n"))) {
        this.#entries!.delete(key); // kernels changed since: measure again
        return null;
      }
      this.#verified.add(key);
    }
    return e.winner;
  }

  /** Runs every candidate (timed); records the fastest when the timings arrive. */
  measure(key: string, names: string[], launches: (Dispatch | Dispatch[])[]): void {
    const seqs = launches.map((l) => (Array.isArray(l) ? l : [l]));
    const hash = fnv1a(seqs.map((s) => s.map((d) => d.code).join("\n")).join("\n"));
    // Every candidate runs twice and keeps its faster time: a CPU adapter compiles a pipeline on
    // its first dispatch, which would otherwise count against the big kernels (seen: 1.4 s
    // for a matmul that then runs in 58 ms).
    const flat = seqs.flat();
    const done = gpu().timed([...flat, ...flat]).then((times) => {
      let at = 0;
      const sums = [...seqs, ...seqs].map((s) => times.slice(at, at += s.length).reduce((a, b) => a + b, 0));
      const ms = seqs.map((_, i) => Math.min(sums[i], sums[i + seqs.length]));
      const best = ms.indexOf(Math.min(...ms));
      this.#load().set(key, {
        winner: names[best],
        hash,
        ms: Object.fromEntries(names.map((n, i) => [n, +ms[i].toFixed(3)])),
      });
      this.#verified.add(key);
      this.#pending.delete(key);
      this.#save();
    });
    this.#pending.set(key, done);
  }

  /** Resolves when every measurement started so far has been recorded. */
  async settled(): Promise<void> {
    while (this.#pending.size) await Promise.all(this.#pending.values());
  }

  /** key -> entry, for reports and for shipping a table. */
  entries(): Record<string, Entry> {
    return Object.fromEntries(this.#load());
  }

  #load(): Map<string, Entry> {
    if (this.#entries) return this.#entries;
    this.#entries = new Map();
    for (const file of [this.shippedFile, this.cacheFile]) {
      try {
        const data = JSON.parse(Deno.readTextFileSync(file));
        for (const [k, e] of Object.entries(data.entries ?? {})) this.#entries.set(k, e as Entry);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) console.error(`kernel tuning cache ${file} ignored: ${e}`);
      }
    }
    return this.#entries;
  }

  #save(): void {
    const file = this.cacheFile, tmp = `${file}.tmp`;
    try {
      Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true });
      const body = { adapter: gpu().adapter.description, entries: this.entries() };
      Deno.writeTextFileSync(tmp, JSON.stringify(body, null, 1) + "\n");
      Deno.renameSync(tmp, file);
    } catch (e) {
      console.error(`could not save kernel tuning cache ${file}: ${e}`);
    }
  }
}

export const tuner = new Tuner();
