// Measured kernel choices, per adapter. The first call of a shape class times every candidate on
// the GPU (timestamp queries, or queue completion where the adapter has none); the fastest wins
// from then on. Winners persist in a cache file per adapter; a shipped table
// (kernels/tuned/<adapter>.json) seeds it, so nothing is tuned twice.
//
// A key is the op, the shape class and, for matmul and conv, the call's form (operand layout; pass
// and geometry), so calls whose best kernel may differ are measured apart. An entry remembers the
// hashes of the candidates' WGSL it was measured with. One key may still hold calls whose code
// differs (a fused epilogue, sizes an attention kernel compiles in): each such code is measured
// once, then known. A code no entry knows (a kernel changed since) is measured again. Calls that arrive while their class is being measured take the untuned default
// instead of starting a second measurement.
//
// CAPTIONER_TUNE=0 turns measuring off (defaults are used where nothing is known);
// CAPTIONER_CACHE_DIR moves the cache (default: $XDG_CACHE_HOME or ~/.cache, then /captioner).

import { gpu } from "../storage.ts";
import type { Dispatch } from "./runtime.ts";

/** timed rounds of a measurement, after one that compiles */
const ROUNDS = 3;

interface Entry {
  winner: string;
  /** the candidates' code hashes this winner was measured (or re-measured) with, newest last */
  hashes: string[];
  ms?: Record<string, number>;
}

/** How many code hashes an entry keeps: a shape class meets a handful of codes, not more. */
const MAX_HASHES = 16;

/** `newer` with the code hashes of both (the winner and timings are `newer`'s). */
function merge(older: Entry | undefined, newer: Entry): Entry {
  const hashes = [...new Set([...(older?.hashes ?? []), ...newer.hashes])].slice(-MAX_HASHES);
  return { ...newer, hashes };
}

/** A file's entries, written before entries kept several hashes or after. */
function readEntries(file: string | URL): Record<string, Entry> {
  const raw: Record<string, Entry & { hash?: string }> = JSON.parse(Deno.readTextFileSync(file)).entries ??
    {};
  return Object.fromEntries(
    Object.entries(raw).map(([k, { hash, ...e }]) => [k, { ...e, hashes: e.hashes ?? (hash ? [hash] : []) }]),
  );
}

function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "adapter";

class Tuner {
  enabled = (Deno.env.get("CAPTIONER_TUNE") ?? "1") !== "0";
  /**
   * Whether kernels/tuned's table counts. `CAPTIONER_TUNE=fresh` measures every class on this
   * machine instead: hosts reporting the same llvmpipe differ up to 10x in what a load costs, and
   * so in which variant wins (bench/loads.ts, bench/RESULTS.md session 16).
   */
  shipped = Deno.env.get("CAPTIONER_TUNE") !== "fresh";
  #entries: Map<string, Entry> | null = null;
  /** the cache file `#entries` came from: another one (CAPTIONER_CACHE_DIR changed) is read afresh */
  #loadedFrom = "";
  /** key -> winner's code -> whether the entry knows the candidates' code (see `confirm`) */
  #confirmed = new Map<string, Map<string, boolean>>();
  #pending = new Map<string, Promise<void>>();
  /** keys this machine measured or read from its cache file: the ones the cache file keeps */
  #local = new Set<string>();
  #slug: string | null = null;

  /** memoised: every kernel call reaches it (through the cache file's name) */
  get adapterSlug(): string {
    return this.#slug ??= slug(gpu().adapter.description);
  }

  get cacheFile(): string {
    const base = Deno.env.get("CAPTIONER_CACHE_DIR") ??
      `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`}/captioner`;
    return `${base}/kernels-${this.adapterSlug}.json`;
  }

  get shippedFile(): URL {
    return new URL(`../../kernels/tuned/${this.adapterSlug}.json`, import.meta.url);
  }

  /** The winner recorded for `key`, whichever code it was measured with (see `confirm`). */
  winner(key: string): string | null {
    return this.#load().get(key)?.winner ?? null;
  }

  /**
   * Whether `key`'s winner was measured with these candidates: the answer for `code` (the
   * winner's, for this call) is remembered until the next measurement, so a call pays for `codes`
   * (every candidate's) only once. Building them every call would cost ~0.7 ms per matmul (its 11
   * candidates' WGSL, measured), and more for a conv: with tuning off and a table measured with
   * older kernels, the test suite took 4x as long building them.
   * The price: a later call whose winner's code is the same but whose other candidates' code
   * differs (sizes that only the losing kernels compile in) is taken as measured.
   */
  confirm(key: string, code: string, codes: () => string[]): boolean {
    // by key, then by code: kernels' code strings are built once (kernels/common.ts, memoWGSL) and
    // keep their hash, where a string made of key and code would be hashed anew every call
    const answers = this.#confirmed.get(key) ?? this.#confirmed.set(key, new Map()).get(key)!;
    let known = answers.get(code);
    if (known === undefined) {
      known = this.#load().get(key)?.hashes.includes(fnv1a(codes().join("\n"))) ?? false;
      answers.set(code, known);
    }
    return known;
  }

  /** Whether `key` is being measured now (its winner is not known yet). */
  measuring(key: string): boolean {
    return this.#pending.has(key);
  }

  /** Runs every candidate (timed); records the fastest when the timings arrive. */
  measure(key: string, names: string[], launches: (Dispatch | Dispatch[])[]): void {
    const seqs = launches.map((l) => (Array.isArray(l) ? l : [l]));
    const hash = fnv1a(seqs.map((s) => s.map((d) => d.code).join("\n")).join("\n"));
    // A round to compile (a CPU adapter compiles a pipeline on its first dispatch: seen 1.4 s for
    // a matmul that then runs in 58 ms), then ROUNDS timed ones, each starting one candidate later,
    // so that none always runs first or last; each keeps its fastest. One timed round picked a
    // kernel 1.5x slower than the best at a time (bench/RESULTS.md step 86).
    const rounds = [0, ...Array(ROUNDS).keys()].map((shift) => seqs.map((_, i) => (i + shift) % seqs.length));
    const done = gpu().timed(rounds.flat().flatMap((i) => seqs[i])).then((times) => {
      const ms = seqs.map(() => Infinity);
      let at = 0;
      rounds.forEach((order, r) =>
        order.forEach((i) => {
          const t = times.slice(at, at += seqs[i].length).reduce((a, b) => a + b, 0);
          if (r > 0) ms[i] = Math.min(ms[i], t);
        })
      );
      const best = ms.indexOf(Math.min(...ms));
      this.#local.add(key);
      this.#load().set(
        key,
        merge(this.#load().get(key), {
          winner: names[best],
          hashes: [hash],
          ms: Object.fromEntries(names.map((n, i) => [n, +ms[i].toFixed(3)])),
        }),
      );
      this.#pending.delete(key);
      this.#confirmed.clear(); // answers of "not measured with these candidates" may be stale now
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
    if (this.#entries && this.#loadedFrom === this.cacheFile) return this.#entries;
    this.#entries = new Map();
    this.#loadedFrom = this.cacheFile;
    this.#confirmed.clear();
    this.#local.clear();
    for (const file of this.shipped ? [this.shippedFile, this.cacheFile] : [this.cacheFile]) {
      try {
        for (const [k, e] of Object.entries(readEntries(file))) {
          this.#entries.set(k, merge(this.#entries.get(k), e));
          if (file === this.cacheFile) this.#local.add(k);
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) console.error(`kernel tuning cache ${file} ignored: ${e}`);
      }
    }
    return this.#entries;
  }

  /** Writes this process's entries over the file's, keeping what another process added since. */
  #save(): void {
    const file = this.cacheFile, tmp = `${file}.${Deno.pid}.tmp`;
    try {
      Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true });
      let entries: Record<string, Entry> = {};
      try {
        entries = readEntries(file);
      } catch { /* none yet, or unreadable: this process's entries replace it */ }
      for (const k of this.#local) entries[k] = merge(entries[k], this.#load().get(k)!);
      const body = { adapter: gpu().adapter.description, entries };
      Deno.writeTextFileSync(tmp, JSON.stringify(body, null, 1) + "\n");
      Deno.renameSync(tmp, file);
    } catch (e) {
      console.error(`could not save kernel tuning cache ${file}: ${e}`);
    }
  }
}

export const tuner = new Tuner();
