// Just enough of ZIP to read PyTorch checkpoints: the central directory (with Zip64 records, which
// torch writes for big files), and entries stored (torch's choice) or deflated (a re-zipped file).

export interface ZipEntry {
  name: string;
  /** the entry's bytes, inflated if needed */
  read(): Promise<Uint8Array>;
}

const EOCD = 0x06054b50, ZIP64_LOCATOR = 0x07064b50, ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

/** The entries of the archive in `bytes`; `source` names it in errors. */
export function readZip(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const fail = (problem: string): never => {
    throw new Error(`${source}: not a readable zip archive (${problem})`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => (at + 2 <= bytes.length ? view.getUint16(at, true) : fail("truncated"));
  const u32 = (at: number) => (at + 4 <= bytes.length ? view.getUint32(at, true) : fail("truncated"));
  const u64 = (at: number) => {
    const v = at + 8 <= bytes.length ? view.getBigUint64(at, true) : fail("truncated");
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? fail("offset too large") : Number(v);
  };

  // The end-of-central-directory record is in the last 22 + 65535 (comment) bytes.
  let eocd = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail("no end-of-central-directory record: truncated, or not a zip file");
  let count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== ZIP64_LOCATOR) fail("missing Zip64 locator");
    const z = u64(loc + 8);
    if (u32(z) !== ZIP64_EOCD) fail("bad Zip64 end record");
    count = u64(z + 32), cdSize = u64(z + 40), cdOffset = u64(z + 48);
  }
  if (cdOffset + cdSize > bytes.length) fail("central directory beyond the end of the file");

  const entries = new Map<string, ZipEntry>();
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    if (u32(at) !== CENTRAL) fail(`bad central directory entry ${i}`);
    const method = u16(at + 10);
    let compressed = u32(at + 20), size = u32(at + 24), local = u32(at + 42);
    const nameLen = u16(at + 28), extraLen = u16(at + 30), commentLen = u16(at + 32);
    if (at + 46 + nameLen > bytes.length) fail("truncated central directory");
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
    // Zip64 extra field: the 64-bit values of the fields saturated above, in this order.
    for (let e = at + 46 + nameLen; e + 4 <= at + 46 + nameLen + extraLen;) {
      const id = u16(e), len = u16(e + 2);
      if (id === 0x0001) {
        let p = e + 4;
        if (size === 0xffffffff) size = u64(p), p += 8;
        if (compressed === 0xffffffff) compressed = u64(p), p += 8;
        if (local === 0xffffffff) local = u64(p);
      }
      e += 4 + len;
    }
    if (u32(local) !== LOCAL) fail(`bad local header for ${name}`);
    const start = local + 30 + u16(local + 26) + u16(local + 28);
    if (start + compressed > bytes.length) fail(`entry ${name} runs past the end of the file`);
    const data = bytes.subarray(start, start + compressed);
    if (method !== 0 && method !== 8) fail(`entry ${name} uses unsupported compression method ${method}`);
    entries.set(name, {
      name,
      read: async () => {
        const out = method === 0 ? data : await inflate(data);
        if (out.length !== size) fail(`entry ${name} has ${out.length} bytes, the directory says ${size}`);
        return out;
      },
    });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate-raw"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
