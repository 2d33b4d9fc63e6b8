// Caption decoding with the KV cache: beam search, greedy and seeded top-p sampling, batched over
// images. The model runs one token per hypothesis per step on the device; choosing tokens happens on
// the host, which reads back one row of log-probabilities per hypothesis.
//
// Beam search semantics (issue 4):
// - the first step expands the single hypothesis [BOS], so the k beams start from k different tokens
//   (the seed started k equal beams, which all picked the same token);
// - each step ranks every extension of every live hypothesis by its summed log-probability; walking
//   down that ranking, extensions ending in EOS are set aside as finished, the others become the new
//   live beams until there are k of them;
// - a finished hypothesis scores logProb / penalty(L), L = generated tokens counting EOS, penalty
//   L^alpha ("length") or ((5 + L) / 6)^alpha ("gnmt", Wu et al. 2016);
// - an image is done when it has `numReturn` finished hypotheses and no live one can still beat them:
//   log-probabilities only fall, so a live one's best possible score is its logProb over the largest
//   penalty it can still reach;
// - hypotheses alive at `maxLength` tokens finish there.

import { F, noGrad, tensor, tidy } from "../tensor/mod.ts";
import { pcg, uniformAt } from "../tensor/random.ts";
import type { Decoder, Memory } from "./decoder.ts";
import type { KVCache } from "./kv_cache.ts";

export interface SearchOptions {
  bosId: number;
  eosId: number;
  /** most generated tokens, counting EOS (default 75) */
  maxLength?: number;
  /** EOS is not allowed before this many tokens (default 0) */
  minLength?: number;
  /** record the last layer's cross-attention weights (head average) for every generated token */
  returnAttention?: boolean;
}

export interface BeamOptions extends SearchOptions {
  beamSize?: number;
  alpha?: number;
  lengthPenalty?: "length" | "gnmt";
  /** hypotheses returned per image, best first (default 1, at most beamSize) */
  numReturn?: number;
}

export interface SampleOptions extends SearchOptions {
  /** nucleus: sample among the most likely tokens whose probabilities sum to topP (default 0.9) */
  topP?: number;
  temperature?: number;
  seed?: number;
}

export interface Hypothesis {
  /** generated tokens, without BOS and EOS */
  tokens: number[];
  /** sum of the log-probabilities of the generated tokens (EOS included when generated) */
  logProb: number;
  /** logProb / length penalty for beam search; logProb otherwise */
  score: number;
  /** whether the hypothesis ended with EOS (rather than at maxLength) */
  finished: boolean;
  /** per generated token (EOS included), the weights over the image tokens */
  attention?: Float32Array[];
}

export function lengthPenalty(kind: "length" | "gnmt", L: number, alpha: number): number {
  return kind === "gnmt" ? ((5 + L) / 6) ** alpha : L ** alpha;
}

interface Live {
  tokens: number[];
  logProb: number;
  attention: Float32Array[];
}

interface StepOut {
  /** [R, V] log-probabilities of the next token */
  logp: Float32Array;
  /** [R, N] cross-attention weights, when recorded */
  attn: Float32Array | null;
  V: number;
}

/** Feeds each row its last token and reads back the next-token log-probabilities. */
async function step(
  decoder: Decoder,
  cache: KVCache,
  last: number[],
  withAttention: boolean,
): Promise<StepOut> {
  const device = cache.self[0].k.device;
  const out = tidy(() =>
    noGrad(() => {
      const tok = tensor(Int32Array.from(last), [last.length, 1], { device, dtype: "i32" });
      const r = decoder.decode(tok, [], { cache, returnAttention: withAttention });
      const V = r.logits.shape[2];
      return {
        logp: F.logSoftmax(F.reshape(r.logits, [last.length, V]), -1),
        attn: r.attention && F.reshape(r.attention, [last.length, -1]),
      };
    })
  );
  const V = out.logp.shape[1];
  const [logp, attn] = await Promise.all([out.logp.toArray(), out.attn?.toArray() ?? null]) as [
    Float32Array,
    Float32Array | null,
  ];
  out.logp.dispose();
  out.attn?.dispose();
  return { logp, attn, V };
}

/** Runs `fn` with the decoder in inference mode and the cache freed afterwards. */
async function decoding<T>(
  decoder: Decoder,
  memory: Memory,
  maxLength: number,
  fn: (cache: KVCache) => Promise<T>,
): Promise<T> {
  const wasTraining = decoder.training;
  decoder.eval();
  const cache = decoder.createCache(memory, maxLength);
  try {
    return await fn(cache);
  } finally {
    cache.dispose();
    decoder.train(wasTraining);
  }
}

const lastToken = (h: Live, bos: number) => h.tokens.at(-1) ?? bos;

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 1) {
    throw new Error(`maxLength must be >= 1, got ${maxLength}`);
  }
}

/** The `m` best (score, index) pairs of row r, best first; ties go to the lower token id. */
function topOfRow(logp: Float32Array, r: number, V: number, m: number, skip: number): [number, number][] {
  const best: [number, number][] = [];
  for (let v = 0; v < V; v++) {
    if (v === skip) continue;
    const x = logp[r * V + v];
    if (best.length === m && x <= best[m - 1][0]) continue;
    let i = best.length < m ? best.length : m - 1;
    while (i > 0 && best[i - 1][0] < x) i--;
    best.splice(i, 0, [x, v]);
    if (best.length > m) best.pop();
  }
  return best;
}

/** Beam search over each image's memory rows; per image, up to `numReturn` hypotheses, best first. */
export async function beamSearch(decoder: Decoder, memory: Memory, o: BeamOptions): Promise<Hypothesis[][]> {
  const k = o.beamSize ?? 5, alpha = o.alpha ?? 0.6, kind = o.lengthPenalty ?? "length";
  const maxLength = o.maxLength ?? 75, minLength = o.minLength ?? 0;
  const numReturn = Math.min(o.numReturn ?? 1, k);
  checkMaxLength(maxLength);
  if (!Number.isInteger(k) || k < 1) throw new Error(`beamSize must be >= 1, got ${k}`);
  const B = memory[0].shape[0], lp = (L: number) => lengthPenalty(kind, L, alpha);
  const finished: Hypothesis[][] = Array.from({ length: B }, () => []);
  const finish = (b: number, h: Live, ended: boolean) => {
    const L = h.tokens.length + (ended ? 1 : 0);
    finished[b].push({
      tokens: h.tokens,
      logProb: h.logProb,
      score: h.logProb / lp(L),
      finished: ended,
      ...(o.returnAttention ? { attention: h.attention } : {}),
    });
    finished[b].sort((x, y) => y.score - x.score);
  };
  // The best score a live hypothesis of raw score s and length L could still finish with.
  const bound = (s: number, L: number) => Math.max(s / lp(Math.min(L + 1, maxLength)), s / lp(maxLength));

  return await decoding(decoder, memory, maxLength, async (cache) => {
    // Rows of the batch: image b's live hypotheses, images in order.
    let groups = Array.from(
      { length: B },
      (_, b) => ({ b, live: [{ tokens: [], logProb: 0, attention: [] }] as Live[] }),
    );
    for (let t = 0; t < maxLength && groups.length; t++) {
      const rows = groups.flatMap((g) => g.live);
      const { logp, attn, V } = await step(
        decoder,
        cache,
        rows.map((h) => lastToken(h, o.bosId)),
        !!o.returnAttention,
      );
      const N = attn ? attn.length / rows.length : 0;
      const next: typeof groups = [], origins: number[] = [];
      let row0 = 0;
      for (const g of groups) {
        const cands: { s: number; v: number; r: number }[] = [];
        g.live.forEach((h, i) => {
          const r = row0 + i, noEos = h.tokens.length < minLength ? o.eosId : -1;
          for (const [x, v] of topOfRow(logp, r, V, 2 * k, noEos)) cands.push({ s: h.logProb + x, v, r });
        });
        cands.sort((x, y) => y.s - x.s || x.r - y.r || x.v - y.v);
        const live: Live[] = [], from: number[] = [];
        for (const c of cands) {
          const parent = rows[c.r];
          const attention = attn ? [...parent.attention, attn.slice(c.r * N, (c.r + 1) * N)] : [];
          if (c.v === o.eosId) finish(g.b, { tokens: parent.tokens, logProb: c.s, attention }, true);
          else {
            live.push({ tokens: [...parent.tokens, c.v], logProb: c.s, attention });
            from.push(c.r);
          }
          if (live.length === k) break;
        }
        row0 += g.live.length;
        const done = finished[g.b];
        if (t + 1 === maxLength) {
          for (const h of live) finish(g.b, h, false);
          continue;
        }
        const settled = done.length >= numReturn &&
          live.every((h) => bound(h.logProb, h.tokens.length) <= done[numReturn - 1].score);
        if (settled || live.length === 0) continue;
        next.push({ b: g.b, live });
        origins.push(...from);
      }
      groups = next;
      if (groups.length) cache.select(origins);
    }
    return finished.map((f) => f.slice(0, numReturn));
  });
}

/** Greedy decoding: the most likely token at every step. */
export async function greedy(decoder: Decoder, memory: Memory, o: SearchOptions): Promise<Hypothesis[]> {
  return await sequential(
    decoder,
    memory,
    o,
    (logp, r, V, allowEos) => topOfRow(logp, r, V, 1, allowEos ? -1 : o.eosId)[0][1],
  );
}

/** Top-p (nucleus) sampling with temperature, reproducible from `seed`. */
export async function sample(decoder: Decoder, memory: Memory, o: SampleOptions): Promise<Hypothesis[]> {
  const topP = o.topP ?? 0.9, temperature = o.temperature ?? 1;
  if (!(topP > 0 && topP <= 1)) throw new Error(`topP must be in (0, 1], got ${topP}`);
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const key = pcg((o.seed ?? 0) >>> 0);
  let draw = 0;
  return await sequential(decoder, memory, o, (logp, r, V, allowEos) => {
    const p = new Float64Array(V);
    let max = -Infinity, total = 0;
    for (let v = 0; v < V; v++) {
      if (allowEos || v !== o.eosId) max = Math.max(max, logp[r * V + v] / temperature);
    }
    for (let v = 0; v < V; v++) {
      p[v] = allowEos || v !== o.eosId ? Math.exp(logp[r * V + v] / temperature - max) : 0;
      total += p[v];
    }
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
    let mass = 0, n = 0;
    while (n < V && (n === 0 || mass < topP * total)) mass += p[order[n++]];
    let u = uniformAt(key, draw++) * mass;
    for (let i = 0; i < n; i++) if ((u -= p[order[i]]) < 0) return order[i];
    return order[n - 1];
  });
}

type Choose = (logp: Float32Array, row: number, V: number, allowEos: boolean) => number;

/** One hypothesis per image, extended by `choose` until EOS or maxLength. */
async function sequential(
  decoder: Decoder,
  memory: Memory,
  o: SearchOptions,
  choose: Choose,
): Promise<Hypothesis[]> {
  const maxLength = o.maxLength ?? 75, minLength = o.minLength ?? 0;
  checkMaxLength(maxLength);
  const B = memory[0].shape[0];
  const hyps: Hypothesis[] = Array.from({ length: B }, () => ({
    tokens: [],
    logProb: 0,
    score: 0,
    finished: false,
    ...(o.returnAttention ? { attention: [] } : {}),
  }));
  return await decoding(decoder, memory, maxLength, async (cache) => {
    let active = Array.from({ length: B }, (_, b) => b);
    for (let t = 0; t < maxLength && active.length; t++) {
      const last = active.map((b) => hyps[b].tokens.at(-1) ?? o.bosId);
      const { logp, attn, V } = await step(decoder, cache, last, !!o.returnAttention);
      const N = attn ? attn.length / active.length : 0;
      const keep: number[] = [];
      active.forEach((b, r) => {
        const h = hyps[b], v = choose(logp, r, V, h.tokens.length >= minLength);
        h.logProb += logp[r * V + v];
        h.score = h.logProb;
        if (attn) h.attention!.push(attn.slice(r * N, (r + 1) * N));
        if (v === o.eosId) h.finished = true;
        else {
          h.tokens.push(v);
          keep.push(r);
        }
      });
      active = keep.map((r) => active[r]);
      if (active.length) cache.select(keep);
    }
    return hyps;
  });
}
