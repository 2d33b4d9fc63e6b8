// Decoder parity with the PyTorch reference (nn.TransformerDecoderLayer; tools/make_model_fixtures.py):
// logits, the loss with its EOS term and gradients, for the seed's post-norm decoder and a pre-norm,
// tied, shared-projection one; in float64 on the CPU and float32 on WebGPU. Then the KV cache, the
// causal and padding masks.

import assert from "node:assert";
import { type Device, device, type DType, F, noGrad, tensor, tidy } from "../tensor/mod.ts";
import { readSafetensors } from "../tensor/io/safetensors.ts";
import { relError } from "./helpers/check.ts";
import { attention, Captioner, Decoder, type DecoderOptions } from "../model/mod.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("./fixtures/model_decoder.json", import.meta.url)));
const WEIGHTS =
  (await readSafetensors(new URL("./fixtures/model_decoder.safetensors", import.meta.url).pathname))
    .tensors;
const TARGETS: [Device, DType, number][] = [["cpu", "f64", 1e-9]];
if (device() === "webgpu") TARGETS.push(["webgpu", "f32", 2e-4]);

type Json = { shape: number[]; data: number[] };
const json = (t: Json, o: { device: Device; dtype: DType }) => tensor(t.data, t.shape, o);

function captioner(variant: string, dev: Device, dtype: DType): Captioner {
  const { config } = FIX.variants[variant];
  const c = new Captioner({
    ...FIX.special,
    vocabSize: config.vocabSize,
    encoder: null,
    decoder: config,
    loss: FIX.loss,
    device: dev,
    dtype,
  });
  const dict = new Map(
    [...WEIGHTS].filter(([k]) => k.startsWith(variant + ".")).map((
      [k, v],
    ) => [`decoder.${k.slice(variant.length + 1)}`, v]),
  );
  c.loadStateDict(dict);
  return c.eval(); // dropout off, as the reference
}

for (const variant of Object.keys(FIX.variants)) {
  for (const [dev, dtype, tol] of TARGETS) {
    Deno.test(`decoder parity (${variant}, ${dev} ${dtype}): logits, loss with EOS term, gradients`, async () => {
      const ref = FIX.variants[variant], c = captioner(variant, dev, dtype);
      const o = { device: dev, dtype };
      const tokens = tensor(FIX.tokens.flat(), [FIX.tokens.length, FIX.tokens[0].length], {
        device: dev,
        dtype: "i32",
      });
      const out = tidy(() => {
        const feats = json(FIX.features, o);
        const T = tokens.shape[1];
        const input = F.slice(tokens, 1, 0, T - 1);
        const pad = F.sub(1, F.indexMask(input, FIX.special.padId, feats));
        const logits = noGrad(() => c.decoder.forward(input, c.decoder.memory(feats), pad));
        const terms = c.lossTerms(feats, tokens);
        terms.loss.backward();
        return { logits, ...terms };
      });
      const e = relError(await out.logits.toArray(), ref.logits.data);
      const errors = [`logits ${e.toExponential(2)}`];
      assert(e <= tol, `logits error ${e.toExponential(2)} > ${tol}`);
      for (const k of ["loss", "ce", "eos"] as const) {
        const v = await out[k].item();
        errors.push(`${k} ${(Math.abs(v - ref[k]) / Math.abs(ref[k])).toExponential(2)}`);
        assert(Math.abs(v - ref[k]) <= tol * Math.abs(ref[k]), `${k}: ${v} vs ${ref[k]}`);
      }
      const params = new Map(c.namedParameters());
      for (const [name, g] of Object.entries(ref.grads as Record<string, Json>)) {
        const grad = params.get(`decoder.${name}`)?.grad;
        assert(grad, `no gradient for ${name}`);
        const eg = relError(await grad.toArray(), g.data);
        errors.push(`d${name} ${eg.toExponential(2)}`);
        assert(eg <= tol * 5, `gradient of ${name}: error ${eg.toExponential(2)}`);
      }
      if (Deno.env.get("PARITY_VERBOSE")) console.log(`${variant} ${dev}: ${errors.join(", ")}`);
      for (const t of [out.logits, out.loss, out.ce, out.eos, tokens]) t.dispose();
      c.dispose();
    });
  }
}

function smallDecoder(o: Partial<DecoderOptions> = {}): Decoder {
  return new Decoder({
    vocabSize: 23,
    featureDim: 12,
    embedDim: 8,
    dModel: 16,
    layers: 2,
    heads: 2,
    ffnDim: 24,
    ...o,
  })
    .eval();
}

const ids = (rows: number[][], dev = device()) =>
  tensor(rows.flat(), [rows.length, rows[0].length], { device: dev, dtype: "i32" });

const CACHE_TARGETS: [Device, DType, number][] = [["cpu", "f64", 1e-12]];
if (device() === "webgpu") CACHE_TARGETS.push(["webgpu", "f32", 1e-5]);
for (const [dev, dtype, tol] of CACHE_TARGETS) {
  Deno.test(`KV cache (${dev} ${dtype}): incremental decoding gives the logits of recomputing the prefix`, async () => {
    for (const norm of ["post", "pre"] as const) {
      const dec = smallDecoder({ norm, device: dev, dtype });
      const rows = [[2, 5, 6, 7, 8, 9, 10], [2, 11, 12, 13, 14, 15, 16]];
      const tokens = ids(rows, dev);
      const { full, memory } = tidy(() =>
        noGrad(() => {
          const memory = dec.memory(
            tensor(Float64Array.from({ length: 2 * 4 * 12 }, (_, i) => Math.sin(i)), [2, 4, 12], {
              device: dev,
              dtype,
            }),
          );
          return { full: dec.forward(tokens, memory), memory };
        })
      );
      const expect = await full.toArray();
      const cache = dec.createCache(memory, 8);
      // A 3-token chunk (a prompt: causal with an offset of 0), then one token at a time.
      const chunks = [[0, 3], [3, 4], [4, 5], [5, 6], [6, 7]];
      for (const [a, b] of chunks) {
        const step = tidy(() => noGrad(() => dec.decode(F.slice(tokens, 1, a, b), memory, { cache }).logits));
        const got = await step.toArray(), V = 23;
        for (let r = 0; r < 2; r++) {
          const want = expect.slice((r * 7 + a) * V, (r * 7 + b) * V),
            have = got.slice(r * (b - a) * V, (r + 1) * (b - a) * V);
          const e = relError(have, want);
          assert(e <= tol, `${norm}-norm, positions ${a}..${b - 1}, row ${r}: error ${e.toExponential(2)}`);
        }
        step.dispose();
      }
      assert.equal(cache.length, 7);
      cache.dispose();
      for (const t of [full, tokens, ...new Set(memory)]) t.dispose();
      dec.dispose();
    }
  });
}

Deno.test("causal mask: logits at a position never depend on later tokens (training and inference)", async () => {
  const dec = smallDecoder();
  const feats = tensor(Float32Array.from({ length: 4 * 12 }, (_, i) => Math.cos(i)), [1, 4, 12]);
  const logits = async (row: number[]) => {
    const t = tidy(() => noGrad(() => dec.forward(ids([row]), dec.memory(feats))));
    const a = await t.toArray();
    t.dispose();
    return a;
  };
  const a = await logits([2, 5, 6, 7, 8]), b = await logits([2, 5, 6, 19, 20]);
  const V = 23;
  assert(relError(a.slice(0, 3 * V), b.slice(0, 3 * V)) < 1e-6, "positions before the change moved");
  assert(relError(a.slice(3 * V), b.slice(3 * V)) > 1e-3, "later positions should differ");
  feats.dispose();
  dec.dispose();
});

Deno.test("attention: causal with an offset, key padding, weights", async () => {
  const q = tensor(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i)), [1, 2, 3, 4]);
  const k = tensor(Float32Array.from({ length: 2 * 5 * 4 }, (_, i) => Math.cos(i)), [1, 2, 5, 4]);
  const pad = tensor([0, 0, 1, 0, 0], [1, 5]);
  const r = tidy(() => attention(q, k, k, { causal: true, keyPadding: pad, returnWeights: true }));
  const w: number[] = Array.from(await r.weights!.toArray());
  for (let h = 0; h < 2; h++) {
    for (let i = 0; i < 3; i++) {
      const row = w.slice((h * 3 + i) * 5, (h * 3 + i + 1) * 5);
      // Query i is position 2 + i of 5: it sees keys 0..2+i, except the padded key 2.
      row.forEach((x, j) =>
        assert(j > 2 + i || j === 2 ? x === 0 : x > 0, `head ${h} query ${i} key ${j}: ${x}`)
      );
      assert(Math.abs(row.reduce((s, x) => s + x, 0) - 1) < 1e-6);
    }
  }
  assert.throws(() => attention(k, q, q, { causal: true }), /3 keys under a causal mask/);
  for (const t of [q, k, pad, r.out, r.weights!]) t.dispose();
});

Deno.test("padding: pad tokens do not change the logits of real positions, and the loss ignores them", async () => {
  const c = new Captioner({
    vocabSize: 23,
    encoder: null,
    decoder: { featureDim: 12, embedDim: 8, dModel: 16, layers: 1, heads: 2, ffnDim: 24 },
  }).eval();
  const feats = tensor(Float32Array.from({ length: 2 * 3 * 12 }, (_, i) => Math.sin(i * 0.3)), [2, 3, 12]);
  const loss = async (rows: number[][]) => {
    const t = tidy(() => noGrad(() => c.loss(feats, rows)));
    const v = await t.item();
    t.dispose();
    return v;
  };
  const short = [[2, 5, 6, 3, 0, 0], [2, 7, 8, 9, 10, 3]];
  const same = await loss(short);
  // The same captions with a different pad id in the padded slots would change them; instead check
  // that appending more padding leaves the loss unchanged.
  const longer = await loss(short.map((r) => [...r, 0, 0]));
  assert(Math.abs(same - longer) < 1e-5, `${same} vs ${longer}`);
  feats.dispose();
  c.dispose();
});
