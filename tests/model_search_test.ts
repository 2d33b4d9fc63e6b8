// Decoding: beam search and greedy against the PyTorch reference (full recomputation of every prefix,
// tools/make_model_fixtures.py), batched over images through the KV cache; then the properties the
// issue asks for: distinct first-step beams, flat memory, seeded sampling, attention weights.

import assert from "node:assert";
import { F, noGrad, tensor, tidy } from "../tensor/mod.ts";
import { memory as gpuMemory } from "../tensor/storage.ts";
import { readSafetensors } from "../tensor/io/safetensors.ts";
import {
  beamSearch,
  Decoder,
  greedy,
  type Hypothesis,
  lengthPenalty,
  type Memory,
  sample,
} from "../model/mod.ts";

const FIX = JSON.parse(await Deno.readTextFile(new URL("./fixtures/model_search.json", import.meta.url)));
const path = new URL("./fixtures/model_search.safetensors", import.meta.url).pathname;
const { bosId, eosId } = FIX.special;

const decoder = new Decoder(FIX.config).eval();
decoder.loadStateDict((await readSafetensors(path)).tensors);

function imageMemory(): Memory {
  const m = tidy(() => noGrad(() => decoder.memory(tensor(FIX.features.data, FIX.features.shape))));
  for (const t of new Set(m)) t.keep();
  return m;
}
const release = (m: Memory) => new Set(m).forEach((t) => t.dispose());

type Ref = { tokens: number[]; logProb: number; score?: number; finished: boolean };
let worst = 0;
function same(got: Hypothesis, want: Ref, where: string): void {
  assert.deepEqual(got.tokens, want.tokens, `${where}: tokens`);
  assert.equal(got.finished, want.finished, `${where}: finished`);
  worst = Math.max(
    worst,
    Math.abs(got.logProb - want.logProb),
    Math.abs(got.score - (want.score ?? got.score)),
  );
  assert(Math.abs(got.logProb - want.logProb) < 1e-4, `${where}: logProb ${got.logProb} vs ${want.logProb}`);
  if (want.score !== undefined) {
    assert(Math.abs(got.score - want.score) < 1e-4, `${where}: score ${got.score} vs ${want.score}`);
  }
}

Deno.test("beam search and greedy match the PyTorch reference, batched over 3 images", async () => {
  const memory = imageMemory();
  for (const [s, opts] of FIX.searches.entries()) {
    const got = await beamSearch(decoder, memory, { ...opts, bosId, eosId });
    got.forEach((hyps, b) => {
      const want: Ref[] = FIX.results[b].beams[s];
      assert.equal(hyps.length, want.length, `search ${s} image ${b}: number of hypotheses`);
      hyps.forEach((h, i) => same(h, want[i], `search ${s} image ${b} hypothesis ${i}`));
    });
  }
  const g = await greedy(decoder, memory, { bosId, eosId, maxLength: 9 });
  g.forEach((h, b) => same(h, FIX.results[b].greedy, `greedy image ${b}`));
  if (Deno.env.get("PARITY_VERBOSE")) {
    console.log(`search: max |logProb / score error| ${worst.toExponential(2)}`);
  }
  release(memory);
});

Deno.test("beam search: the first step expands one hypothesis, so beams start with different tokens", async () => {
  const memory = imageMemory();
  const k = 4;
  const hyps = await beamSearch(decoder, memory, {
    bosId,
    eosId,
    beamSize: k,
    numReturn: k,
    maxLength: 1,
    alpha: 0,
  });
  const first = tidy(() =>
    noGrad(() => {
      const cache = decoder.createCache(memory, 1);
      const bos = tensor(new Int32Array(3).fill(bosId), [3, 1], { dtype: "i32" });
      const logp = F.logSoftmax(decoder.decode(bos, memory, { cache }).logits, -1);
      cache.dispose();
      return logp;
    })
  );
  const logp = await first.toArray(), V = FIX.config.vocabSize;
  hyps.forEach((list, b) => {
    const row = Array.from(logp.slice(b * V, (b + 1) * V));
    const top = row.map((x, v) => [x, v]).sort((x, y) => y[0] - x[0]).map(([, v]) => v).slice(0, k);
    // Each hypothesis is one token (EOS ones are empty and finished): together, the top k tokens.
    const tokens = list.map((h) => (h.finished ? eosId : h.tokens[0]));
    assert.deepEqual([...tokens].sort((x, y) => x - y), [...top].sort((x, y) => x - y), `image ${b}`);
    assert.equal(new Set(tokens).size, k);
  });
  first.dispose();
  release(memory);
});

Deno.test("decoding keeps device memory flat, returns attention weights, respects maxLength", async () => {
  const memory = imageMemory();
  const opts = { bosId, eosId, maxLength: 6, returnAttention: true };
  await beamSearch(decoder, memory, opts); // warm the pool
  const before = gpuMemory().liveBytes;
  for (let i = 0; i < 2; i++) {
    const beams = await beamSearch(decoder, memory, { ...opts, beamSize: 3 });
    const greedyOut = await greedy(decoder, memory, opts);
    for (const h of [...beams.flat(), ...greedyOut]) {
      assert(h.tokens.length <= 6);
      assert.equal(h.attention!.length, h.tokens.length + (h.finished ? 1 : 0));
      for (const w of h.attention!) {
        assert.equal(w.length, FIX.features.shape[1]);
        assert(Math.abs(w.reduce((s, x) => s + x, 0) - 1) < 1e-4);
      }
    }
  }
  assert.equal(gpuMemory().liveBytes, before, "live GPU bytes grew during decoding");
  release(memory);
});

Deno.test("top-p sampling is reproducible from its seed; a tiny nucleus is greedy", async () => {
  const memory = imageMemory();
  const opts = { bosId, eosId, maxLength: 8 };
  const a = await sample(decoder, memory, { ...opts, seed: 42, topP: 0.95, temperature: 1.5 });
  const b = await sample(decoder, memory, { ...opts, seed: 42, topP: 0.95, temperature: 1.5 });
  const c = await sample(decoder, memory, { ...opts, seed: 7, topP: 0.95, temperature: 1.5 });
  assert.deepEqual(a.map((h) => h.tokens), b.map((h) => h.tokens));
  assert.notDeepEqual(a.map((h) => h.tokens), c.map((h) => h.tokens));
  const nucleus = await sample(decoder, memory, { ...opts, seed: 1, topP: 1e-9 });
  const g = await greedy(decoder, memory, opts);
  assert.deepEqual(nucleus.map((h) => h.tokens), g.map((h) => h.tokens));
  await assert.rejects(() => sample(decoder, memory, { ...opts, topP: 0 }), /topP/);
  release(memory);
});

Deno.test("length penalties: L^alpha and GNMT's ((5 + L) / 6)^alpha", () => {
  assert.equal(lengthPenalty("length", 4, 0.5), 2);
  assert.equal(lengthPenalty("gnmt", 7, 1), 2);
  assert.equal(lengthPenalty("gnmt", 1, 0.6), 1);
});
