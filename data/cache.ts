// On-disk image cache so that a second epoch does not download again. Blobs are named by the SHA-256 of
// their content (mirrors and re-posts of one image are stored once); an index maps URLs to blobs and is
// trimmed least-recently-used first when the total passes the cap.
import type { ImageCache } from "./loader.ts";

interface Entry {
  hash: string;
  size: number;
  used: number;
}

export class DiskCache implements ImageCache {
  #index = new Map<string, Entry>();
  #refs = new Map<string, number>(); // urls per blob
  #bytes = 0;
  #clock = 0;
  #dirty = 0;

  private constructor(readonly dir: string, readonly maxBytes: number) {}

  /** Open (or create) a cache in `dir` holding at most `maxBytes` of images. */
  static async open(dir: string, maxBytes = 10 * 2 ** 30): Promise<DiskCache> {
    const cache = new DiskCache(dir, maxBytes);
    await Deno.mkdir(`${dir}/blobs`, { recursive: true });
    try {
      const saved: [string, Entry][] = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      for (const [url, entry] of saved) cache.#add(url, entry);
      cache.#clock = Math.max(0, ...saved.map(([, e]) => e.used));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new Error(`${dir}/index.json: unreadable cache index: ${e}`);
      }
    }
    return cache;
  }

  get size(): number {
    return this.#bytes;
  }

  async get(url: string): Promise<Uint8Array | undefined> {
    const entry = this.#index.get(url);
    if (!entry) return undefined;
    try {
      const bytes = await Deno.readFile(this.#path(entry.hash));
      entry.used = ++this.#clock;
      return bytes;
    } catch {
      this.#remove(url); // deleted behind our back: download again
      return undefined;
    }
  }

  async put(url: string, bytes: Uint8Array): Promise<void> {
    if (this.#index.has(url) || bytes.length > this.maxBytes) return;
    const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
    const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!this.#refs.has(hash)) {
      // Write then rename, so a crash never leaves a half-written blob under a valid name.
      await Deno.writeFile(`${this.#path(hash)}.tmp`, bytes);
      await Deno.rename(`${this.#path(hash)}.tmp`, this.#path(hash));
    }
    this.#add(url, { hash, size: bytes.length, used: ++this.#clock });
    await this.#evict();
    if (++this.#dirty >= 64) await this.flush();
  }

  /** Persist the index (also done every 64 insertions). */
  async flush() {
    this.#dirty = 0;
    await Deno.writeTextFile(`${this.dir}/index.json.tmp`, JSON.stringify([...this.#index]));
    await Deno.rename(`${this.dir}/index.json.tmp`, `${this.dir}/index.json`);
  }

  #path(hash: string) {
    return `${this.dir}/blobs/${hash}`;
  }

  #add(url: string, entry: Entry) {
    this.#index.set(url, entry);
    const refs = this.#refs.get(entry.hash) ?? 0;
    if (!refs) this.#bytes += entry.size;
    this.#refs.set(entry.hash, refs + 1);
  }

  #remove(url: string): string | undefined {
    const entry = this.#index.get(url)!;
    this.#index.delete(url);
    const refs = this.#refs.get(entry.hash)! - 1;
    if (refs) return void this.#refs.set(entry.hash, refs);
    this.#refs.delete(entry.hash);
    this.#bytes -= entry.size;
    return entry.hash;
  }

  async #evict() {
    if (this.#bytes <= this.maxBytes) return;
    const oldest = [...this.#index].sort(([, a], [, b]) => a.used - b.used);
    for (const [url] of oldest) {
      if (this.#bytes <= this.maxBytes) break;
      const orphan = this.#remove(url);
      if (orphan) await Deno.remove(this.#path(orphan)).catch(() => {});
    }
  }
}
