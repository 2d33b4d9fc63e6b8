// Raw safetensors reader/writer, independent of the Tensor class.
//
// File layout: u64 little-endian header length N, N bytes of UTF-8 JSON header, then the data buffer.
// The header maps tensor names to { dtype, shape, data_offsets: [begin, end] } (offsets relative to the
// data buffer) plus an optional "__metadata__" map of string -> string.
//
// Reading: F32 -> Float32Array; F16/BF16 -> Float32Array (exact, these widen losslessly); F64 ->
// Float64Array; I32 -> Int32Array; I64 -> Int32Array (throws if a value does not fit, since WebGPU has
// no 64-bit integers and token ids / shapes never need them). Other dtypes are validated in the header
// but refused when their data is requested.
//
// Writing: Float32Array -> F32, Float64Array -> F32 (the stack computes in f32, so storing f64 would only
// make checkpoints twice as big), Int32Array -> I32.

export type TensorData = Float32Array | Float64Array | Int32Array;

export interface RawTensor {
  shape: number[];
  data: TensorData;
}

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  /** [begin, end) byte range, relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor entries in the order the header lists them. */
  entries: Map<string, HeaderEntry>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data buffer in the file (8 + header length). */
  dataStart: number;
  /** Size in bytes of the data buffer. */
  dataSize: number;
}

export interface ReadOptions {
  /** Only decode these tensors (default: all). Unknown names are an error. */
  names?: string[];
}

/** Bytes per element of every dtype the format defines, so headers of files holding dtypes we cannot
 * decode still validate (and their other tensors stay readable). */
const DTYPE_SIZE: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

// Headers of real checkpoints are a few hundred KB; anything this large is a corrupt length field, and
// trusting it would make us allocate garbage-sized buffers.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

// Typed-array views below reinterpret file bytes directly, which is only right on little-endian hosts
// (every platform WebGPU runs on in practice).
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors.ts assumes a little-endian host");
}

function fail(source: string, problem: string): never {
  throw new Error(`safetensors ${source}: ${problem}`);
}

// ---------------------------------------------------------------------------------------------------
// Header parsing and validation (shared by the file and in-memory readers)

/** Validates the 8-byte length prefix against the total size and returns the header length. */
function headerLength(prefix: Uint8Array, totalSize: number, source: string): number {
  if (totalSize < 8) {
    fail(source, `file is ${totalSize} bytes, shorter than the 8-byte header-length prefix`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    fail(source, `header length ${n} is absurd (> ${MAX_HEADER_BYTES} bytes); not a safetensors file?`);
  }
  if (8n + n > BigInt(totalSize)) {
    fail(source, `header length ${n} is larger than the file (${totalSize} bytes); truncated file?`);
  }
  return Number(n);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function parseHeader(
  json: Uint8Array,
  dataStart: number,
  dataSize: number,
  source: string,
): SafetensorsHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    fail(source, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isObject(parsed)) fail(source, "header JSON is not an object");

  const metadata: Record<string, string> = {};
  const entries = new Map<string, HeaderEntry>();
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (!isObject(raw)) fail(source, "__metadata__ is not an object");
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== "string") fail(source, `__metadata__["${k}"] is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isObject(raw)) fail(source, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (dtype === undefined) fail(source, `${where}: missing "dtype"`);
    if (shape === undefined) fail(source, `${where}: missing "shape"`);
    if (offsets === undefined) fail(source, `${where}: missing "data_offsets"`);
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_SIZE, dtype)) {
      fail(source, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail(source, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      fail(source, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = shape.reduce((a: number, d: number) => a * d, 1) * DTYPE_SIZE[dtype];
    if (end < begin || end - begin !== expected) {
      fail(
        source,
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ` +
          `${dtype} shape [${shape}] needs ${expected}`,
      );
    }
    if (end > dataSize) {
      fail(
        source,
        `${where}: data_offsets [${begin}, ${end}] run past the ${dataSize}-byte data buffer; truncated file?`,
      );
    }
    entries.set(name, { dtype, shape: [...shape], dataOffsets: [begin, end] });
  }

  // Overlapping ranges mean a corrupt (or malicious) file; two tensors silently sharing bytes would be
  // a nightmare to debug later. Gaps are harmless, so they are allowed.
  const byOffset = [...entries].sort(([, a], [, b]) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let prevName = "", prevEnd = 0;
  for (const [name, { dataOffsets: [begin, end] }] of byOffset) {
    if (begin < prevEnd) {
      fail(source, `tensor "${name}" overlaps tensor "${prevName}" (starts at ${begin}, before ${prevEnd})`);
    }
    if (end > prevEnd) [prevName, prevEnd] = [name, end];
  }
  return { entries, metadata, dataStart, dataSize };
}

// ---------------------------------------------------------------------------------------------------
// Decoding tensor bytes

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values as f32, built once: a table lookup is both exact and fast. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    let v: number;
    if (exp === 0) v = mant * 2 ** -24; // zero and subnormals
    else if (exp === 0x1f) v = mant === 0 ? Infinity : NaN;
    else v = (1 + mant / 1024) * 2 ** (exp - 15);
    f16Table[h] = sign * v; // every f16 value is exactly representable in f32
  }
  return f16Table;
}

/** A typed view on `bytes`, copying first when the offset is not aligned for the element type. */
function view<T>(
  bytes: Uint8Array,
  Ctor: { new (b: ArrayBuffer, o: number, n: number): T; BYTES_PER_ELEMENT: number },
): T {
  const aligned = bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new Ctor(
    aligned.buffer as ArrayBuffer,
    aligned.byteOffset,
    aligned.byteLength / Ctor.BYTES_PER_ELEMENT,
  );
}

function decodeTensor(name: string, entry: HeaderEntry, bytes: Uint8Array, source: string): RawTensor {
  const shape = [...entry.shape];
  switch (entry.dtype) {
    case "F32":
      return { shape, data: view(bytes, Float32Array) };
    case "F64":
      return { shape, data: view(bytes, Float64Array) };
    case "I32":
      return { shape, data: view(bytes, Int32Array) };
    case "F16": {
      const table = halfTable();
      const u16 = view(bytes, Uint16Array);
      const out = new Float32Array(u16.length);
      for (let i = 0; i < u16.length; i++) out[i] = table[u16[i]];
      return { shape, data: out };
    }
    case "BF16": {
      // bf16 is the top half of an f32, so widening is a shift (keeps inf/nan/subnormals exactly).
      const u16 = view(bytes, Uint16Array);
      const out = new Uint32Array(u16.length);
      for (let i = 0; i < u16.length; i++) out[i] = u16[i] << 16;
      return { shape, data: new Float32Array(out.buffer) };
    }
    case "I64": {
      // An i64 fits in i32 exactly when its high word is the sign extension of its low word.
      const words = view(bytes, Int32Array);
      const out = new Int32Array(words.length / 2);
      for (let i = 0; i < out.length; i++) {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (hi !== lo >> 31) {
          const value = view(bytes, BigInt64Array)[i];
          fail(source, `tensor "${name}": I64 value ${value} at index ${i} is outside the int32 range`);
        }
        out[i] = lo;
      }
      return { shape, data: out };
    }
    default:
      fail(source, `tensor "${name}" has dtype ${entry.dtype}, which this reader does not support`);
  }
}

/** The entries to decode, in data-buffer order so file reads are sequential; requested names must exist. */
function selectEntries(header: SafetensorsHeader, names: string[] | undefined, source: string) {
  const missing = (names ?? []).filter((n) => !header.entries.has(n));
  if (missing.length > 0) fail(source, `no tensor named ${missing.map((n) => `"${n}"`).join(", ")}`);
  const wanted = names && new Set(names);
  return [...header.entries].filter(([n]) => !wanted || wanted.has(n))
    .sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0]);
}

// ---------------------------------------------------------------------------------------------------
// Reading

/** Decodes a safetensors file held in memory. F32/F64/I32 results are views into `bytes` when it is
 * suitably aligned (no copy), so they alias it. `source` names the data in error messages. */
export function decodeSafetensors(
  bytes: Uint8Array,
  opts: ReadOptions & { source?: string } = {},
): { tensors: Map<string, RawTensor>; metadata: Record<string, string> } {
  const source = opts.source ?? "<memory>";
  const n = headerLength(bytes, bytes.length, source);
  const header = parseHeader(bytes.subarray(8, 8 + n), 8 + n, bytes.length - 8 - n, source);
  const tensors = new Map<string, RawTensor>();
  for (const [name, entry] of selectEntries(header, opts.names, source)) {
    const [begin, end] = entry.dataOffsets;
    tensors.set(name, decodeTensor(name, entry, bytes.subarray(8 + n + begin, 8 + n + end), source));
  }
  return { tensors, metadata: header.metadata };
}

/** Fills `buf` from the file's current position; a short read means the file shrank under us. */
async function readExact(file: Deno.FsFile, buf: Uint8Array, source: string): Promise<void> {
  for (let got = 0; got < buf.length;) {
    const n = await file.read(buf.subarray(got));
    if (n === null) fail(source, `unexpected end of file (wanted ${buf.length} bytes, got ${got})`);
    got += n;
  }
}

async function readHeaderFrom(file: Deno.FsFile, path: string): Promise<SafetensorsHeader> {
  const size = (await file.stat()).size;
  const prefix = new Uint8Array(8);
  if (size >= 8) await readExact(file, prefix, path);
  const n = headerLength(prefix, size, path);
  const json = new Uint8Array(n);
  await readExact(file, json, path);
  return parseHeader(json, 8 + n, size - 8 - n, path);
}

/** Reads and validates only the header (no tensor data). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  using file = await Deno.open(path, { read: true });
  return await readHeaderFrom(file, path);
}

/** Reads the header, then only the byte ranges of the requested tensors (each into its own buffer, so
 * a large checkpoint is never held in memory twice). */
export async function readSafetensors(
  path: string,
  opts: ReadOptions = {},
): Promise<{ tensors: Map<string, RawTensor>; metadata: Record<string, string> }> {
  using file = await Deno.open(path, { read: true });
  const header = await readHeaderFrom(file, path);
  const tensors = new Map<string, RawTensor>();
  for (const [name, entry] of selectEntries(header, opts.names, path)) {
    const [begin, end] = entry.dataOffsets;
    const bytes = new Uint8Array(end - begin);
    await file.seek(header.dataStart + begin, Deno.SeekMode.Start);
    await readExact(file, bytes, path);
    tensors.set(name, decodeTensor(name, entry, bytes, path));
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------
// Writing

/** The serialized file as a list of chunks: header first, then each tensor's bytes in key order.
 * Kept as chunks so the file writer can stream them without building one giant buffer. */
function layout(
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata: Record<string, string> | undefined,
): Uint8Array[] {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new Error(`safetensors write: metadata["${k}"] is not a string`);
    }
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of [...map.keys()].sort()) {
    const { shape, data } = map.get(name)!;
    if (name === "__metadata__") throw new Error(`safetensors write: "__metadata__" is reserved`);
    if (!shape.every(isNonNegInt)) {
      throw new Error(`safetensors write: tensor "${name}" shape [${shape}] is not non-negative integers`);
    }
    const count = shape.reduce((a, d) => a * d, 1);
    if (count !== data.length) {
      throw new Error(
        `safetensors write: tensor "${name}" shape [${shape}] needs ${count} values, got ${data.length}`,
      );
    }
    const stored = data instanceof Float64Array ? new Float32Array(data) : data;
    const bytes = new Uint8Array(stored.buffer, stored.byteOffset, stored.byteLength);
    const dtype = stored instanceof Int32Array ? "I32" : "F32";
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference implementation does;
  // readers can then view tensor data in place without copying.
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  headerBytes.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  return [prefix, headerBytes, ...chunks];
}

/** Serializes tensors to an in-memory safetensors file (see module comment for dtypes). */
export function encodeSafetensors(
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const chunks = layout(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Writes a safetensors file atomically: a crash mid-write leaves the previous checkpoint intact
 * rather than a truncated one, because the data goes to `path.tmp` and is renamed over `path`. */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const chunks = layout(tensors, metadata);
  const tmp = path + ".tmp";
  try {
    {
      using file = await Deno.open(tmp, { write: true, create: true, truncate: true });
      for (const chunk of chunks) {
        for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
      }
      await file.syncData(); // the rename must not become visible before the data is on disk
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
