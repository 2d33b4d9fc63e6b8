// Reading PyTorch checkpoints without executing them: every storage dtype, shared and strided
// storages, the legacy format, wrapped state dicts; refusing malicious pickles and corrupt files
// with errors that name the file; `deno task convert`.

import assert from "node:assert";
import { readSafetensors } from "../tensor/io/safetensors.ts";
import { decodePth, loadWeights, readPth, resnet } from "../model/mod.ts";
import { unpickle } from "../model/pickle.ts";
import { convert } from "../convert.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const EXPECTED: Record<string, { shape: number[]; data: number[] }> = JSON.parse(
  await Deno.readTextFile(fixture("model_pth.json")),
);

for (const file of ["model_dtypes.pth", "model_dtypes_legacy.pth"]) {
  Deno.test(`pth: ${file}: every dtype, shared and non-contiguous storages`, async () => {
    const got = await readPth(fixture(file));
    assert.deepEqual([...got.keys()].sort(), Object.keys(EXPECTED).sort());
    for (const [name, want] of Object.entries(EXPECTED)) {
      const t = got.get(name)!;
      assert.deepEqual(t.shape, want.shape, name);
      assert.deepEqual(Array.from(t.data), want.data, name);
      const integer = ["i64", "i32", "u8", "bool"].includes(name);
      assert.equal(t.data instanceof Int32Array, integer, `${name} dtype`);
    }
  });
}

Deno.test("pth: a checkpoint wrapping its state dict in {'state_dict': ...} is unwrapped", async () => {
  const got = await readPth(fixture("model_wrapped.pth"));
  assert.deepEqual([...got.keys()], ["w"]);
  assert.deepEqual(got.get("w")!.shape, [1, 4]);
});

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("pickle: globals outside the allow-list are refused, naming the file", async () => {
  // pickle.dumps of os.system("echo pwned") via __reduce__, protocol 2
  const evil = enc("\x80\x02cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.");
  await assert.rejects(() => decodePth(evil, "evil.pth"), /evil\.pth: .*global posix\.system is not allowed/);
  const builtins = enc("\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.");
  await assert.rejects(() => decodePth(builtins, "b.pth"), /b\.pth: .*global builtins\.eval is not allowed/);
  const opts = { source: "x.pkl", findGlobal: () => undefined, persistentLoad: () => null };
  // INST and NEWOBJ build arbitrary objects: refused as opcodes.
  assert.throws(
    () => unpickle(enc("\x80\x02(iposix\nsystem\n."), opts),
    /x\.pkl: .*opcode 0x69 \(INST\) is not allowed/,
  );
  assert.throws(() => unpickle(enc("\x80\x02)\x81."), opts), /opcode 0x81 \(NEWOBJ\)/);
  assert.throws(() => unpickle(enc("\x80\x02X\xff\xff\xff\x00ab"), opts), /truncated/);
  assert.throws(() => unpickle(enc("\x80\x02h\x05."), opts), /memo key 5/);
  assert.deepEqual(
    unpickle(enc("\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00b]q\x01(K\x02K\x03eu."), opts),
    new Map<string, unknown>([["a", 1], ["b", [2, 3]]]),
  );
});

Deno.test("pth: corrupt and truncated files give clear errors naming the file", async () => {
  const bytes = await Deno.readFile(fixture("model_resnet18.pth"));
  await assert.rejects(
    () => decodePth(bytes.subarray(0, bytes.length - 200), "cut.pth"),
    /cut\.pth: not a readable zip archive/,
  );
  await assert.rejects(
    () => decodePth(enc("hello world"), "text.pth"),
    /text\.pth: neither a zip nor a legacy/,
  );
  // Garbage in the pickle: the first entry of a torch zip is data.pkl, at offset 30 + name + extra.
  const broken = bytes.slice();
  const view = new DataView(broken.buffer);
  const start = 30 + view.getUint16(26, true) + view.getUint16(28, true);
  broken.set(enc("\x80\x02cos\nsystem\n"), start);
  await assert.rejects(
    () => decodePth(broken, "bad.pth"),
    /bad\.pth: unsafe or corrupt pickle at byte 2: global os\.system/,
  );
  await assert.rejects(() => readPth("/nonexistent/w.pth"), /\/nonexistent\/w\.pth: cannot read/);
});

Deno.test("loadWeights: wrong shapes, missing names and unknown formats fail with the file named", async () => {
  const wide = resnet(18, { numClasses: 10, widths: [8, 16, 32, 32], device: "cpu" });
  await assert.rejects(
    () => loadWeights(wide, fixture("model_resnet18.pth")),
    /model_resnet18\.pth: loadStateDict: mismatched: layer4\.0\.conv1\.weight: expected \[32,32,3,3\]/,
  );
  wide.dispose();
  const encoder = resnet(18, { numClasses: 0, widths: [8, 16, 32, 64], device: "cpu" });
  await assert.rejects(
    () => loadWeights(encoder, fixture("model_resnet18.pth")),
    /unexpected: fc\.weight, fc\.bias/,
  );
  await loadWeights(encoder, fixture("model_resnet18.pth"), { drop: ["fc."] });
  await assert.rejects(
    () => loadWeights(encoder, fixture("model_pth.json")),
    /model_pth\.json: unknown weights format/,
  );
  encoder.dispose();
});

Deno.test("convert: .pth to .safetensors keeps every tensor, also through `deno task convert`", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pth = await readPth(fixture("model_resnet50.pth"));
    assert.equal(await convert(fixture("model_resnet50.pth"), `${dir}/a.safetensors`), pth.size);
    const cli = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "convert", fixture("model_dtypes.pth"), `${dir}/b.safetensors`],
      cwd: new URL("..", import.meta.url).pathname,
    }).output();
    assert(cli.success, new TextDecoder().decode(cli.stderr));
    for (const [file, src] of [["a", pth], ["b", await readPth(fixture("model_dtypes.pth"))]] as const) {
      const { tensors, metadata } = await readSafetensors(`${dir}/${file}.safetensors`);
      assert.equal(metadata.format, "pt");
      assert.deepEqual([...tensors.keys()].sort(), [...src.keys()].sort());
      for (const [k, t] of src) {
        assert.deepEqual(tensors.get(k)!.shape, t.shape, k);
        assert.deepEqual(Array.from(tensors.get(k)!.data), Array.from(t.data), k);
      }
    }
    // The committed .safetensors fixture was written by PyTorch's side from the same state dict.
    const theirs = (await readSafetensors(fixture("model_resnet50.safetensors"))).tensors;
    for (const [k, t] of pth) assert.deepEqual(Array.from(theirs.get(k)!.data), Array.from(t.data), k);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
