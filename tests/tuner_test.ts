// The kernel tuner: first use of a shape class times the candidates on the GPU, the winner is
// cached per adapter (with the hashes of the WGSL it was measured with), and every call's result
// stays correct.

import assert from "node:assert";
import { device, F, gpu, randn, tidy } from "../tensor/mod.ts";
import type { Binding, Dispatch } from "../tensor/webgpu/runtime.ts";
import { tuner } from "../tensor/webgpu/tuner.ts";
import { keyIsCurrent, VARIANTS } from "../tensor/webgpu/variants.ts";
import { relError } from "./helpers/check.ts";

/** Runs `body` with tuning on and a cache file of its own. */
async function withTuning(body: () => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir(), was = tuner.enabled;
  Deno.env.set("CAPTIONER_CACHE_DIR", dir);
  tuner.enabled = true;
  try {
    await body();
  } finally {
    tuner.enabled = was;
    Deno.env.delete("CAPTIONER_CACHE_DIR");
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "the tuner measures candidates once, caches the winner, and results stay correct",
  ignore: device() !== "webgpu",
}, () =>
  withTuning(async () => {
    const [a, b] = [randn([24, 40]), randn([40, 36])];
    const ref = await tidy(() => F.matmul(a.detach(), b.detach())).toArray(); // first use: timed candidates
    await tuner.settled();
    const entries = JSON.parse(await Deno.readTextFile(tuner.cacheFile)).entries;
    const key = Object.keys(entries).find((k) => k.startsWith("matmul|32x32x32|"));
    assert(key, `no matmul entry in ${Object.keys(entries)}`);
    assert.deepEqual(Object.keys(entries), [key], "the cache file keeps this machine's measurements only");
    const e = entries[key];
    assert(e.winner in e.ms && Object.values(e.ms).every((ms) => (ms as number) >= 0), JSON.stringify(e));
    const again = await tidy(() => F.matmul(a, b)).toArray(); // the winner
    const [ca, cb] = [await a.toArray(), await b.toArray()];
    const cpu = new Float64Array(24 * 36);
    for (let i = 0; i < 24; i++) {
      for (let j = 0; j < 36; j++) {
        for (let k = 0; k < 40; k++) cpu[i * 36 + j] += ca[i * 40 + k] * cb[k * 36 + j];
      }
    }
    assert(relError(ref, cpu) < 1e-5 && relError(again, cpu) < 1e-5);
  }));

Deno.test({
  name:
    "the tuner measures each operand layout of a shape class once, and calls during a measurement wait for none",
  ignore: device() !== "webgpu",
}, () =>
  withTuning(async () => {
    const g = gpu(), timed = g.timed;
    let measurements = 0;
    g.timed = (ds) => (measurements++, timed.call(g, ds));
    try {
      // 12 x 20 @ 20 x 80: shape class 16x64x16 (M x N x K), in no shipped table; b^T is read in place,
      // another operand layout of the same class, with a winner of its own
      const [a, b, bt] = [randn([12, 20]), randn([20, 80]), randn([80, 20])];
      const known = () => Object.keys(tuner.entries()).filter((k) => /^matmul\|16x64x16\|k[nk]\|/.test(k));
      assert.deepEqual(known(), [], "the class is measured already: pick another for this test");
      const plain = () => tidy(() => F.matmul(a, b)).toArray();
      const transposed = () => tidy(() => F.matmul(a, F.transpose(bt))).toArray();
      const first = [plain(), plain(), plain()]; // the second and third arrive while the first is measured
      assert.equal(measurements, 1);
      await Promise.all(first);
      await tuner.settled();
      await transposed();
      await tuner.settled();
      assert.equal(measurements, 2, "the other layout is measured once");
      await Promise.all([plain(), transposed(), plain()]);
      assert.equal(measurements, 2, "known codes are not measured again");
      const entries = JSON.parse(await Deno.readTextFile(tuner.cacheFile)).entries;
      assert.deepEqual(known().map((k) => k.split("|")[2]).sort(), ["kk", "kn"]);
      for (const k of known()) assert.equal(entries[k].hashes.length, 1, JSON.stringify(entries[k]));
    } finally {
      g.timed = timed;
    }
  }));

Deno.test({
  name: "a conv's storage-form row candidates are timed with the weight copy that each call makes",
  ignore: device() !== "webgpu",
}, () =>
  withTuning(async () => {
    const g = gpu(), timed = g.timed, sent: Dispatch[][] = [];
    g.timed = (ds) => (sent.push(ds), timed.call(g, ds));
    try {
      // 5 x 6 planes, 4 -> 8 channels: a shape class in no shipped table
      const [x, w] = [randn([1, 4, 5, 6]), randn([8, 4, 3, 3])];
      await tidy(() => F.conv2d(x, w, null, { padding: 1 })).toArray();
      await tuner.settled();
      const all = sent.flat(), conv = all.findIndex((d) => d.name === "conv2d_forward_rows16x8");
      assert.ok(conv >= 0, `rows16x8 was not timed: ${[...new Set(all.map((d) => d.name))]}`);
      const weights = all[conv].reads[1] as Binding;
      assert.ok(
        all.slice(0, conv).some((d) => d.writes.some((b) => (b as Binding).buffer === weights.buffer)),
        "no launch timed before the kernel writes the weights it reads",
      );
    } finally {
      g.timed = timed;
    }
  }));

Deno.test({
  name: "attention's dK/dV pass measures 49 keys apart from 75, which share its size class",
  ignore: device() !== "webgpu",
}, () =>
  withTuning(async () => {
    // 2 heads of 24 queries (d 8): M = 48, both key counts in the class of 64; blocks of 7 cut 49
    // keys evenly, blocks of 4 pad 75 least
    const q = randn([1, 2, 24, 8], { requiresGrad: true });
    for (const Tk of [49, 75]) {
      const [k, v] = [
        randn([1, 2, Tk, 8], { requiresGrad: true }),
        randn([1, 2, Tk, 8], { requiresGrad: true }),
      ];
      tidy(() => F.attention(q, k, v).backward(randn([1, 2, 24, 8])));
      await tuner.settled();
    }
    const forms = Object.keys(tuner.entries()).filter((k) => k.startsWith("attention_dkv|64x64x8|"))
      .map((k) => k.split("|")[2]).sort();
    assert.deepEqual(forms, ["fit4", "fit7"]);
  }));

Deno.test("tuning keys of variants that are gone, or of an older form, are not shipped", () => {
  const names = VARIANTS.matmul.map((v) => v.name).join(",");
  assert(keyIsCurrent(`matmul|16x64x16|kn|${names}`));
  assert(!keyIsCurrent(`matmul|16x64x16|${names}`), "a matmul key without its operand layout");
  assert(!keyIsCurrent("matmul|16x64x16|kn|vec4_4x4,vec4_3x3"), "a variant that no longer exists");
  assert(keyIsCurrent("softmax|64x128x1|thread,group"));
  const dkv = VARIANTS.attention_dkv.map((v) => v.name).join(",");
  assert(keyIsCurrent(`attention_dkv|1024x64x64|fit7|${dkv}`));
  assert(!keyIsCurrent(`attention_dkv|1024x64x64|${dkv}`), "a dK/dV key without its keys' fit");
});

// On a shared host a launch's time depends on where it sits in the submission (the first ones may
// share the cores with the host's own work), so each candidate must be timed in more than one place.
Deno.test({
  name: "the tuner times each candidate in more than one place in its rounds and keeps its fastest",
  ignore: device() !== "webgpu",
}, () =>
  withTuning(async () => {
    const g = gpu(), timed = g.timed;
    const base: Record<string, number> = { a: 1, b: 2, c: 3 };
    // every round's first launch costs 10 ms more, wherever a candidate's true time lies
    g.timed = (ds) => Promise.resolve(ds.map((d, i) => base[d.name] + (i % 3 === 0 ? 10 : 0)));
    try {
      const launch = (name: string) => ({ name, code: name, params: [], reads: [], writes: [] });
      tuner.measure("test|rounds", ["a", "b", "c"], ["a", "b", "c"].map(launch));
      await tuner.settled();
    } finally {
      g.timed = timed;
    }
    const e = tuner.entries()["test|rounds"];
    assert.equal(e.winner, "a", JSON.stringify(e.ms));
    assert.deepEqual(e.ms, base);
  }));
