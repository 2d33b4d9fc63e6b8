// PyTorch checkpoints (torch.save of a state dict) read without executing anything.
//
// Zip format (torch >= 1.6): `<prefix>/data.pkl` is a pickle whose tensors are calls of
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) and whose storages are
// persistent ids ("storage", torch.FloatStorage, key, location, numel) naming `<prefix>/data/<key>`,
// raw little-endian bytes. Legacy format (older files): pickles of a magic number, protocol and
// system info, then the same structure, then the storages one after another, each preceded by its
// element count as int64.

import type { RawTensor, TensorData } from "../tensor/io/safetensors.ts";
import { type Callable, unpickleAt } from "./pickle.ts";
import { readZip } from "./zip.ts";

interface StorageKind {
  bytes: number;
  decode(b: Uint8Array, fail: (p: string) => never): TensorData;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const widen = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const ints = (n: number, f: (i: number) => number) => Int32Array.from({ length: n }, (_, i) => f(i));
/** The bytes reinterpreted (copied, so alignment never matters); the host is little-endian like the file. */
const cast = <T>(b: Uint8Array, As: { new (buf: ArrayBuffer): T }) => new As(b.slice().buffer);

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("pth.ts assumes a little-endian host");
}

/** IEEE half -> float, exactly. */
function half(h: number): number {
  const e = (h >> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// Integers become i32 (WebGPU has no 64-bit integers); values that do not fit are an error.
const STORAGES: Record<string, StorageKind> = {
  FloatStorage: { bytes: 4, decode: (b) => cast(b, Float32Array) },
  DoubleStorage: { bytes: 8, decode: (b) => cast(b, Float64Array) },
  HalfStorage: { bytes: 2, decode: (b) => widen(b.length / 2, (i) => half(view(b).getUint16(2 * i, true))) },
  BFloat16Storage: {
    bytes: 2,
    decode: (b) => {
      const f = new Float32Array(1), u = new Uint32Array(f.buffer);
      return widen(b.length / 2, (i) => (u[0] = view(b).getUint16(2 * i, true) << 16, f[0]));
    },
  },
  LongStorage: {
    bytes: 8,
    decode: (b, fail) =>
      ints(b.length / 8, (i) => {
        const v = view(b).getBigInt64(8 * i, true);
        return v >= -(2n ** 31n) && v < 2n ** 31n
          ? Number(v)
          : fail(`int64 value ${v} does not fit in int32`);
      }),
  },
  IntStorage: { bytes: 4, decode: (b) => cast(b, Int32Array) },
  ShortStorage: { bytes: 2, decode: (b) => Int32Array.from(cast(b, Int16Array)) },
  CharStorage: { bytes: 1, decode: (b) => Int32Array.from(cast(b, Int8Array)) },
  ByteStorage: { bytes: 1, decode: (b) => Int32Array.from(b) },
  BoolStorage: { bytes: 1, decode: (b) => Int32Array.from(b) },
};

class StorageRef {
  constructor(
    readonly kind: StorageKind,
    readonly name: string,
    readonly key: string,
    readonly numel: number,
  ) {}
}

/** What _rebuild_tensor_v2 returns: a strided view, materialised once the storages are read. */
class PendingTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly strides: number[],
  ) {}
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

/** Every tensor of the state dict in a `.pth` / `.pt` file, by name, as host arrays. */
export async function readPth(path: string): Promise<Map<string, RawTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as Error).message}`);
  }
  return await decodePth(bytes, path);
}

/** The same from bytes in memory; `source` names them in errors. */
export async function decodePth(bytes: Uint8Array, source: string): Promise<Map<string, RawTensor>> {
  const fail = (problem: string): never => {
    throw new Error(`${source}: ${problem}`);
  };
  // Storages by key as the pickle names them (the legacy layout lists only their keys).
  const pending = new Map<string, StorageRef>();
  const storageRef = (pid: unknown): StorageRef => {
    const [tag, kind, key, , numel] = Array.isArray(pid) ? pid : [];
    if (
      tag !== "storage" || !(kind instanceof StorageType) || typeof key !== "string" ||
      typeof numel !== "number"
    ) {
      fail(`unexpected persistent id ${String(pid)}`);
    }
    if ((pid as unknown[]).length > 5 && (pid as unknown[])[5] !== null) {
      fail("legacy storage views are not supported");
    }
    const ref = pending.get(key) ?? new StorageRef(kind.kind, kind.qualifiedName, key, numel);
    pending.set(key, ref);
    return ref;
  };
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b;
  const opts = { source, findGlobal, persistentLoad: storageRef };
  let root: unknown;
  let data: (ref: StorageRef) => Promise<Uint8Array>;
  if (isZip) {
    const entries = readZip(bytes, source);
    const pkl = [...entries.keys()].find((n) => /^[^/]+\/data\.pkl$/.test(n)) ??
      fail("no <archive>/data.pkl inside: not a PyTorch checkpoint");
    const prefix = pkl.slice(0, -"data.pkl".length);
    const order = entries.get(`${prefix}byteorder`);
    if (order && new TextDecoder().decode(await order.read()) !== "little") {
      fail("big-endian checkpoints are not supported");
    }
    root = unpickleAt(await entries.get(pkl)!.read(), 0, opts).value;
    data = async (ref) => {
      const entry = entries.get(`${prefix}data/${ref.key}`) ??
        fail(`storage ${ref.key} is missing from the archive`);
      return await entry.read();
    };
  } else if (bytes[0] === 0x80) {
    let at = 0;
    const next = () => {
      const r = unpickleAt(bytes, at, opts);
      at = r.end;
      return r.value;
    };
    if (next() !== LEGACY_MAGIC) fail("not a PyTorch checkpoint (bad magic number)");
    if (next() !== 1001) fail("unsupported legacy checkpoint protocol");
    next(); // system info: endianness and type sizes, which the storages below use as little-endian
    root = next();
    const keys = next();
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) fail("bad storage key list");
    const offsets = new Map<string, number>();
    for (const key of keys as string[]) {
      const numel = at + 8 <= bytes.length
        ? Number(view(bytes).getBigInt64(at, true))
        : fail("truncated storages");
      const ref = pending.get(key);
      offsets.set(key, at + 8);
      at += 8 + numel * (ref?.kind.bytes ?? fail(`storage ${key} is never used`));
    }
    if (at > bytes.length) fail("truncated storages");
    data = (ref) =>
      Promise.resolve(
        bytes.subarray(offsets.get(ref.key)!, offsets.get(ref.key)! + ref.numel * ref.kind.bytes),
      );
  } else fail("neither a zip nor a legacy PyTorch checkpoint");
  return await materialise(stateDict(root, fail), data!, fail);
}

class StorageType implements Callable {
  constructor(readonly qualifiedName: string, readonly kind: StorageKind) {}
  call(): never {
    throw new Error(`${this.qualifiedName} cannot be called from a weights file`);
  }
}

const callable = (qualifiedName: string, call: (args: unknown[]) => unknown): Callable => ({
  qualifiedName,
  call,
});

/** The allow-list: state-dict containers, tensor rebuilding and storage types. Nothing else. */
function findGlobal(module: string, name: string): Callable | undefined {
  const q = `${module}.${name}`;
  if (q === "collections.OrderedDict") {
    return callable(q, (args) => new Map(Array.isArray(args[0]) ? args[0] as [unknown, unknown][] : []));
  }
  if (q === "torch._utils._rebuild_tensor_v2") return callable(q, rebuildTensor);
  if (q === "torch._utils._rebuild_parameter" || q === "torch._utils._rebuild_parameter_with_state") {
    return callable(q, (args) => {
      if (!(args[0] instanceof PendingTensor)) throw new Error(`${q}: not a tensor`);
      return args[0];
    });
  }
  if (module === "torch" && Object.hasOwn(STORAGES, name)) return new StorageType(q, STORAGES[name]);
  return undefined;
}

function rebuildTensor(args: unknown[]): PendingTensor {
  const [storage, offset, shape, strides, , hooks] = args;
  const intList = (x: unknown) => Array.isArray(x) && x.every((v) => Number.isInteger(v) && v >= 0);
  if (
    !(storage instanceof StorageRef) || !Number.isInteger(offset) || !intList(shape) || !intList(strides) ||
    (shape as number[]).length !== (strides as number[]).length
  ) {
    throw new Error("torch._utils._rebuild_tensor_v2: malformed arguments");
  }
  if (hooks instanceof Map && hooks.size) throw new Error("tensors with backward hooks are not supported");
  return new PendingTensor(storage, offset as number, [...shape as number[]], [...strides as number[]]);
}

/** The name -> tensor map, unwrapping {"state_dict": ...} / {"model": ...} checkpoints. */
function stateDict(root: unknown, fail: (p: string) => never): Map<string, PendingTensor> {
  if (!(root instanceof Map)) fail("the checkpoint is not a dict of tensors");
  let dict = root as Map<unknown, unknown>;
  for (const wrapper of ["state_dict", "model"]) {
    const inner = dict.get(wrapper);
    if (inner instanceof Map && ![...dict.values()].some((v) => v instanceof PendingTensor)) dict = inner;
  }
  const out = new Map<string, PendingTensor>();
  for (const [k, v] of dict) {
    if (typeof k !== "string") fail(`state dict key ${String(k)} is not a string`);
    if (!(v instanceof PendingTensor)) fail(`state dict entry ${k} is not a tensor`);
    out.set(k as string, v as PendingTensor);
  }
  return out;
}

async function materialise(
  dict: Map<string, PendingTensor>,
  read: (ref: StorageRef) => Promise<Uint8Array>,
  fail: (p: string) => never,
): Promise<Map<string, RawTensor>> {
  const decoded = new Map<StorageRef, TensorData>();
  const out = new Map<string, RawTensor>();
  for (const [name, t] of dict) {
    let src = decoded.get(t.storage);
    if (!src) {
      const raw = await read(t.storage);
      if (raw.length < t.storage.numel * t.storage.kind.bytes) {
        fail(`storage ${t.storage.key} holds ${raw.length} bytes, ${t.storage.numel} elements need more`);
      }
      src = t.storage.kind.decode(raw.subarray(0, t.storage.numel * t.storage.kind.bytes), fail);
      decoded.set(t.storage, src);
    }
    const n = t.shape.reduce((a, b) => a * b, 1);
    const last = t.offset + t.shape.reduce((s, d, i) => s + (d - 1) * t.strides[i], 0);
    if (n > 0 && last >= src.length) fail(`tensor ${name} [${t.shape}] reads past the end of its storage`);
    out.set(name, { shape: t.shape, data: gather(src, t, n) });
  }
  return out;
}

/** The strided view as a fresh row-major array. */
function gather(src: TensorData, t: PendingTensor, n: number): TensorData {
  let step = 1;
  const rowMajor = t.shape.every((_, i) => {
    const d = t.shape.length - 1 - i, ok = t.shape[d] === 1 || t.strides[d] === step;
    step *= t.shape[d];
    return ok;
  });
  if (rowMajor) return src.slice(t.offset, t.offset + n);
  const out = new (src.constructor as { new (n: number): TensorData })(n);
  const idx = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let at = t.offset;
    for (let d = 0; d < idx.length; d++) at += idx[d] * t.strides[d];
    out[i] = src[at];
    for (let d = idx.length - 1; d >= 0 && ++idx[d] === t.shape[d]; d--) idx[d] = 0;
  }
  return out;
}
