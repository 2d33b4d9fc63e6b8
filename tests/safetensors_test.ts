import {
  decodeSafetensors,
  encodeSafetensors,
  type RawTensor,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "../tensor/io/safetensors.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

function assertArrayEquals(actual: ArrayLike<number>, expected: ArrayLike<number>, what = "") {
  assert(actual.length === expected.length, `${what} length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    // Object.is so that NaN matches NaN and -0 is told apart from 0.
    assert(Object.is(actual[i], expected[i]), `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`);
  }
}

function assertThrowsMatching(fn: () => unknown, pattern: RegExp) {
  try {
    fn();
  } catch (e) {
    assert(e instanceof Error, `threw a non-Error: ${e}`);
    assert(pattern.test(e.message), `message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return;
  }
  throw new Error(`expected an error matching ${pattern}`);
}

async function assertRejectsMatching(fn: () => Promise<unknown>, pattern: RegExp) {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof Error, `threw a non-Error: ${e}`);
    assert(pattern.test(e.message), `message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return;
  }
  throw new Error(`expected a rejection matching ${pattern}`);
}

/** Hand-assembles a file from a header (object, or raw string for malformed JSON) and data bytes,
 * independently of the writer under test. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const u16Bytes = (bits: number[]) => new Uint8Array(new Uint16Array(bits).buffer);

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "safetensors_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("write/read round trip: multiple tensors, scalar, empty, int32, metadata", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/model.safetensors`;
    const tensors: Record<string, RawTensor> = {
      "w": { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, -0, 7]) },
      "scalar": { shape: [], data: new Float32Array([42.25]) },
      "empty": { shape: [0], data: new Float32Array(0) },
      "empty2d": { shape: [2, 0], data: new Float32Array(0) },
      "ids": { shape: [4], data: new Int32Array([0, -1, 2147483647, -2147483648]) },
      // f64 is stored as f32 by design (the stack is f32-only).
      "f64": { shape: [2], data: new Float64Array([0.1, 1 / 3]) },
      // A subarray view must be written from its own offset, not from the start of its buffer.
      "view": { shape: [2], data: new Float32Array([9, 8, 7, 6]).subarray(1, 3) },
    };
    await writeSafetensors(path, tensors, { format: "pt", note: "ünïcode ok" });
    assert([...Deno.readDirSync(dir)].length === 1, "temporary file left behind");

    const { tensors: got, metadata } = await readSafetensors(path);
    assert(
      metadata.format === "pt" && metadata.note === "ünïcode ok",
      `metadata ${JSON.stringify(metadata)}`,
    );
    assert(got.size === Object.keys(tensors).length, `got ${got.size} tensors`);
    for (const [name, t] of Object.entries(tensors)) {
      const r = got.get(name)!;
      assertArrayEquals(r.shape, t.shape, `${name}.shape`);
      const expected = t.data instanceof Float64Array ? new Float32Array(t.data) : t.data;
      assert(r.data.constructor === expected.constructor, `${name}: got ${r.data.constructor.name}`);
      assertArrayEquals(r.data, expected, name);
    }

    // Layout matches the reference writer: keys sorted, header space-padded to 8-byte alignment.
    const bytes = await Deno.readFile(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert(n % 8 === 0, `header length ${n} not 8-byte aligned`);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    const keys = Object.keys(JSON.parse(headerText)).filter((k) => k !== "__metadata__");
    assert(JSON.stringify(keys) === JSON.stringify([...keys].sort()), `keys not sorted: ${keys}`);
    const padding = headerText.slice(headerText.lastIndexOf("}") + 1);
    assert(/^ {0,7}$/.test(padding), `header padding ${JSON.stringify(padding)} is not 0-7 spaces`);
    // The in-memory encoder produces the identical file.
    assertArrayEquals(
      encodeSafetensors(tensors, { format: "pt", note: "ünïcode ok" }),
      bytes,
      "encoded bytes",
    );
  });
});

Deno.test("readSafetensors names subset, header-only read, unknown name", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/m.safetensors`;
    await writeSafetensors(
      path,
      new Map<string, RawTensor>([
        ["a", { shape: [2], data: new Float32Array([1, 2]) }],
        ["b", { shape: [1], data: new Int32Array([5]) }],
      ]),
    );
    const header = await readSafetensorsHeader(path);
    assert(header.entries.get("b")?.dtype === "I32", "b dtype");
    assertArrayEquals(header.entries.get("a")!.dataOffsets, [0, 8], "a offsets");
    assert(header.dataStart % 8 === 0 && header.dataSize === 12, `dataStart ${header.dataStart}`);

    const { tensors } = await readSafetensors(path, { names: ["b"] });
    assert(tensors.size === 1, "only b requested");
    assertArrayEquals(tensors.get("b")!.data, [5]);
    await assertRejectsMatching(
      () => readSafetensors(path, { names: ["a", "nope"] }),
      /no tensor named "nope"/,
    );
  });
});

Deno.test("atomic write replaces an existing file and leaves no .tmp behind", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/ckpt.safetensors`;
    await writeSafetensors(path, { x: { shape: [1], data: new Float32Array([1]) } });
    await writeSafetensors(path, { x: { shape: [1], data: new Float32Array([2]) } });
    assertArrayEquals((await readSafetensors(path)).tensors.get("x")!.data, [2]);
    await assertRejectsMatching(() => Deno.stat(`${path}.tmp`), /No such file|not found/i);
    // A failed write (bad shape) must not clobber the existing file.
    await assertRejectsMatching(
      () => writeSafetensors(path, { x: { shape: [3], data: new Float32Array([1]) } }),
      /needs 3 values, got 1/,
    );
    assertArrayEquals((await readSafetensors(path)).tensors.get("x")!.data, [2]);
    assert([...Deno.readDirSync(dir)].length === 1, "stray files left behind");
  });
});

Deno.test("F16 decodes exactly: normals, subnormals, signed zero, inf, nan", () => {
  const cases: [number, number][] = [
    [0x3c00, 1],
    [0xc000, -2],
    [0x7bff, 65504],
    [0x0001, 2 ** -24], // smallest subnormal
    [0x03ff, 1023 * 2 ** -24], // largest subnormal
    [0x0400, 2 ** -14], // smallest normal
    [0x3555, 0.333251953125], // 2^-2 * (1 + 341/1024)
    [0x8000, -0],
    [0x0000, 0],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x7e00, NaN],
    [0xfe01, NaN],
  ];
  const bytes = build(
    { h: { dtype: "F16", shape: [cases.length], data_offsets: [0, 2 * cases.length] } },
    u16Bytes(cases.map((c) => c[0])),
  );
  const t = decodeSafetensors(bytes).tensors.get("h")!;
  assert(t.data instanceof Float32Array, "F16 should widen to Float32Array");
  assertArrayEquals(t.data, cases.map((c) => c[1]), "f16");
});

Deno.test("BF16 decodes exactly", () => {
  const cases: [number, number][] = [
    [0x3f80, 1],
    [0xc000, -2],
    [0x4049, 3.140625],
    [0x0001, 2 ** -133], // smallest bf16 subnormal (= smallest f32 subnormal with 16 more bits)
    [0x8000, -0],
    [0x7f80, Infinity],
    [0xff80, -Infinity],
    [0x7fc0, NaN],
  ];
  const bytes = build(
    { __metadata__: { k: "v" }, b: { dtype: "BF16", shape: [2, 4], data_offsets: [0, 16] } },
    u16Bytes(cases.map((c) => c[0])),
  );
  const { tensors, metadata } = decodeSafetensors(bytes);
  assert(metadata.k === "v", "metadata");
  assertArrayEquals(tensors.get("b")!.shape, [2, 4]);
  assertArrayEquals(tensors.get("b")!.data, cases.map((c) => c[1]), "bf16");
});

Deno.test("I64 narrows to Int32Array, and refuses out-of-range values", () => {
  const i64 = (vals: bigint[]) => new Uint8Array(new BigInt64Array(vals).buffer);
  const ok = build(
    { ids: { dtype: "I64", shape: [4], data_offsets: [0, 32] } },
    i64([0n, -1n, 2147483647n, -2147483648n]),
  );
  const t = decodeSafetensors(ok).tensors.get("ids")!;
  assert(t.data instanceof Int32Array, "I64 should become Int32Array");
  assertArrayEquals(t.data, [0, -1, 2147483647, -2147483648]);

  for (const bad of [2147483648n, -2147483649n, 1n << 40n]) {
    const bytes = build({ ids: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, i64([3n, bad]));
    assertThrowsMatching(() => decodeSafetensors(bytes), new RegExp(`"ids".*${bad}.*index 1.*int32 range`));
  }
});

Deno.test("F64 and I32 read as-is, even from a misaligned data buffer", () => {
  const data = new Uint8Array(12);
  new DataView(data.buffer).setFloat64(0, Math.PI, true);
  new DataView(data.buffer).setInt32(8, -7, true);
  const header = {
    d: { dtype: "F64", shape: [], data_offsets: [0, 8] },
    i: { dtype: "I32", shape: [1], data_offsets: [8, 12] },
  };
  // build() does not pad the header (other writers may not either), so the data buffer is misaligned.
  const bytes = build(header, data);
  assert((bytes.length - data.length) % 8 !== 0, "test setup: data buffer should be misaligned");
  const { tensors } = decodeSafetensors(bytes);
  assert(tensors.get("d")!.data instanceof Float64Array, "F64 -> Float64Array");
  assertArrayEquals(tensors.get("d")!.data, [Math.PI]);
  assertArrayEquals(tensors.get("i")!.data, [-7]);
  // Same bytes as an oddly-offset view into a larger buffer.
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assertArrayEquals(decodeSafetensors(shifted.subarray(1)).tensors.get("d")!.data, [Math.PI]);
});

Deno.test("unsupported dtype is an error naming tensor and dtype, other tensors stay readable", () => {
  const bytes = build(
    {
      mask: { dtype: "U8", shape: [2], data_offsets: [0, 2] },
      w: { dtype: "F32", shape: [], data_offsets: [4, 8] },
    },
    new Uint8Array([1, 0, 0, 0, 0, 0, 128, 63]),
  );
  assertThrowsMatching(() => decodeSafetensors(bytes), /tensor "mask" has dtype U8.*not support/);
  assertArrayEquals(decodeSafetensors(bytes, { names: ["w"] }).tensors.get("w")!.data, [1]);
});

Deno.test("malformed in-memory files give errors that name the problem", () => {
  const f32 = (shape: number[], offsets: unknown) => ({ dtype: "F32", shape, data_offsets: offsets });
  const eight = new Uint8Array(8);
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /<memory>.*5 bytes, shorter than the 8-byte/],
    [build("{}", eight, 100n), /header length 100 is larger than the file/],
    [build("{}", eight, 1n << 40n), /header length 1099511627776 is absurd/],
    [build("{not json"), /header is not valid UTF-8 JSON/],
    [build("[1, 2]"), /header JSON is not an object/],
    [build("null"), /header JSON is not an object/],
    [build({ __metadata__: { a: 1 } }), /__metadata__\["a"\] is not a string/],
    [build({ x: 5 }), /tensor "x": entry is not an object/],
    [build({ x: { shape: [1], data_offsets: [0, 4] } }, eight), /tensor "x": missing "dtype"/],
    [build({ x: { dtype: "F32", data_offsets: [0, 4] } }, eight), /tensor "x": missing "shape"/],
    [build({ x: { dtype: "F32", shape: [1] } }, eight), /tensor "x": missing "data_offsets"/],
    [
      build({ x: { dtype: "Q4", shape: [1], data_offsets: [0, 4] } }, eight),
      /tensor "x": unknown dtype "Q4"/,
    ],
    [
      build({ x: { dtype: "toString", shape: [1], data_offsets: [0, 4] } }, eight),
      /unknown dtype "toString"/,
    ],
    [
      build({ x: f32([-1], [0, 4]) }, eight),
      /tensor "x": shape \[-1\] is not a list of non-negative integers/,
    ],
    [build({ x: f32([1.5], [0, 4]) }, eight), /shape \[1.5\] is not a list of non-negative integers/],
    [build({ x: { dtype: "F32", shape: "2", data_offsets: [0, 8] } }, eight), /shape "2" is not a list/],
    [build({ x: f32([1], [0]) }, eight), /tensor "x": data_offsets \[0\] is not \[begin, end\]/],
    [build({ x: f32([1], [4, 0]) }, eight), /data_offsets \[4, 0\] span -4 bytes/],
    [
      build({ x: f32([3], [0, 8]) }, eight),
      /tensor "x": data_offsets \[0, 8\] span 8 bytes but F32 shape \[3\] needs 12/,
    ],
    [build({ x: f32([4], [0, 16]) }, eight), /tensor "x".*run past the 8-byte data buffer; truncated/],
    [build({ a: f32([2], [0, 8]), b: f32([1], [4, 8]) }, eight), /tensor "b" overlaps tensor "a"/],
    [build({ a: f32([0], [4, 4]), b: f32([2], [0, 8]) }, eight), /tensor "a" overlaps tensor "b"/],
  ];
  for (const [bytes, pattern] of cases) assertThrowsMatching(() => decodeSafetensors(bytes), pattern);
  // Zero-sized tensors at a boundary and gaps between tensors are fine.
  const okBytes = build({ a: f32([0], [0, 0]), b: f32([1], [4, 8]), c: f32([0], [8, 8]) }, eight);
  assert(decodeSafetensors(okBytes).tensors.size === 3, "valid edge cases rejected");
});

Deno.test("malformed files on disk: errors name the file", async () => {
  await withTempDir(async (dir) => {
    const write = async (name: string, bytes: Uint8Array) => {
      await Deno.writeFile(`${dir}/${name}`, bytes);
      return `${dir}/${name}`;
    };
    const tiny = await write("tiny.safetensors", new Uint8Array(3));
    await assertRejectsMatching(() => readSafetensors(tiny), /tiny\.safetensors: file is 3 bytes, shorter/);
    await assertRejectsMatching(() => readSafetensorsHeader(tiny), /tiny\.safetensors: file is 3 bytes/);

    const good = encodeSafetensors({ w: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
    const cut = await write("cut.safetensors", good.subarray(0, good.length - 4));
    await assertRejectsMatching(() => readSafetensors(cut), /cut\.safetensors: tensor "w".*truncated file/);
    const cutHeader = await write("cuthdr.safetensors", good.subarray(0, 12));
    await assertRejectsMatching(
      () => readSafetensors(cutHeader),
      /cuthdr\.safetensors: header length \d+ is larger/,
    );
    const junk = await write("junk.safetensors", new TextEncoder().encode("this is not a safetensors file"));
    await assertRejectsMatching(
      () => readSafetensors(junk),
      /junk\.safetensors: header length \d+ is absurd/,
    );
  });
});
