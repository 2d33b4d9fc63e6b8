// Just enough tar (POSIX ustar, plus pax and GNU long names on read) for WebDataset shards, streaming in
// both directions so a shard never has to fit in memory.

export interface TarEntry {
  name: string;
  data: Uint8Array;
}

const BLOCK = 512;
const encoder = new TextEncoder(), decoder = new TextDecoder();

/** Header + data + padding for one regular file. Names over 100 bytes use the ustar prefix field. */
export function tarEntry(name: string, data: Uint8Array, mtime = 0): Uint8Array {
  let prefix = "", base = name;
  if (encoder.encode(name).length > 100) {
    const cut = name.lastIndexOf("/", 155);
    if (cut < 0 || encoder.encode(name.slice(cut + 1)).length > 100) {
      throw new Error(`tar: name too long: ${name}`);
    }
    [prefix, base] = [name.slice(0, cut), name.slice(cut + 1)];
  }
  const header = new Uint8Array(BLOCK);
  const put = (offset: number, text: string) => header.set(encoder.encode(text), offset);
  const octal = (offset: number, width: number, value: number) =>
    put(offset, value.toString(8).padStart(width - 1, "0") + "\0");
  put(0, base);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, data.length);
  octal(136, 12, mtime);
  header.fill(0x20, 148, 156); // checksum counts its own field as spaces
  header[156] = 0x30; // regular file
  put(257, "ustar\u000000");
  put(345, prefix);
  octal(148, 7, header.reduce((a, b) => a + b, 0));
  const out = new Uint8Array(BLOCK + Math.ceil(data.length / BLOCK) * BLOCK);
  out.set(header);
  out.set(data, BLOCK);
  return out;
}

/** Two zero blocks end an archive. */
export const TAR_END = new Uint8Array(2 * BLOCK);

/** Pulls exact byte counts out of a stream of arbitrary chunks. */
class ByteReader {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  offset = 0;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    while (this.#size < n) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      this.#chunks.push(value), this.#size += value.length;
    }
    const take = Math.min(n, this.#size), out = new Uint8Array(take);
    for (let filled = 0; filled < take;) {
      const chunk = this.#chunks[0], k = Math.min(chunk.length, take - filled);
      out.set(chunk.subarray(0, k), filled);
      filled += k;
      if (k === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(k);
    }
    this.#size -= take, this.offset += take;
    return out;
  }
  cancel() {
    return this.#reader.cancel().catch(() => {});
  }
}

const field = (h: Uint8Array, offset: number, width: number) => {
  const bytes = h.subarray(offset, offset + width), end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
};

/** Regular files of a tar stream, in order. `source` names the archive in errors. */
export async function* readTar(
  stream: ReadableStream<Uint8Array>,
  source = "<tar>",
): AsyncGenerator<TarEntry> {
  const input = new ByteReader(stream);
  let longName: string | undefined;
  try {
    while (true) {
      const at = input.offset, header = await input.read(BLOCK);
      if (header.length === 0 || header.every((b) => b === 0)) return;
      if (header.length < BLOCK) throw new Error(`${source}: truncated header at byte ${at}`);
      const sum = header.reduce((a, b, i) => a + (i >= 148 && i < 156 ? 0x20 : b), 0);
      if (sum !== parseInt(field(header, 148, 8).trim(), 8)) {
        throw new Error(`${source}: bad header checksum at byte ${at}`);
      }
      const size = parseInt(field(header, 124, 12).trim() || "0", 8),
        type = String.fromCharCode(header[156] || 0x30);
      const data = await input.read(size);
      if (data.length < size) throw new Error(`${source}: truncated entry at byte ${at}`);
      await input.read((BLOCK - (size % BLOCK)) % BLOCK);
      if (type === "L") longName = decoder.decode(data).replace(/\0+$/, "");
      else if (type === "x") {
        longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(decoder.decode(data))?.[1] ?? longName;
      } else if (type === "0" || type === "\0") {
        const prefix = field(header, 345, 155);
        yield { name: longName ?? (prefix ? `${prefix}/` : "") + field(header, 0, 100), data };
        longName = undefined;
      } else longName = undefined; // directories, links: not samples
    }
  } finally {
    await input.cancel();
  }
}
