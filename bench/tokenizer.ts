/**
 * Encode throughput on the Flickr8k captions, single thread: our WordPiece beside transformers.js's
 * BertTokenizer over the same vocabulary, in the same process. Prints tokens/s and the ratio, and writes
 * bench/results/tokenizer.json.
 *
 *   deno run -A bench/tokenizer.ts
 */
import { loadBertUncased } from "../tokenizer/mod.ts";
import { CAPTIONS_PATH, readCaptions } from "../tools/tokenizer_corpus.ts";
import { referenceTokenizer } from "../tools/tokenizer_parity.ts";

const ROUNDS = 5;
const RESULTS = new URL("./results/tokenizer.json", import.meta.url);

/** Tokens per second of the best of `rounds` passes over the captions (the first pass warms the JIT). */
function throughput(encode: (text: string) => number[], captions: string[], rounds: number) {
  let tokens = 0, best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    tokens = 0;
    for (const caption of captions) tokens += encode(caption).length;
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return { tokens, seconds: best, tokensPerSecond: tokens / best };
}

export function benchTokenizer() {
  const captions = readCaptions();
  if (!captions) {
    console.log(`tokenizer bench skipped: no captions at ${CAPTIONS_PATH.pathname}`);
    return undefined;
  }
  // The first pass of a fresh tokenizer also fills its word cache: that is the cold number.
  const cold = loadBertUncased();
  const oursCold = throughput((t) => cold.encode(t), captions, 1);
  const ours = throughput((t) => cold.encode(t), captions, ROUNDS);
  const reference = referenceTokenizer();
  const theirs = throughput(reference, captions, ROUNDS);
  if (theirs.tokens !== ours.tokens) {
    throw new Error(`token counts differ: ${ours.tokens} vs ${theirs.tokens}`);
  }

  const ratio = ours.tokensPerSecond / theirs.tokensPerSecond;
  const results = {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    captions: captions.length,
    tokensPerPass: ours.tokens,
    ours: {
      tokensPerSecond: Math.round(ours.tokensPerSecond),
      coldTokensPerSecond: Math.round(oursCold.tokensPerSecond),
    },
    transformersJs: { version: "4.3.2", tokensPerSecond: Math.round(theirs.tokensPerSecond) },
    ratio: Number(ratio.toFixed(2)),
    targets: { ratioAtLeast2: ratio >= 2, atLeast1MTokensPerSecond: ours.tokensPerSecond >= 1e6 },
  };
  const m = (x: number) => (x / 1e6).toFixed(2) + "M";
  console.log(`tokenizer: ${captions.length} captions, ${ours.tokens} tokens per pass, best of ${ROUNDS}`);
  console.log(
    `  ours            ${m(ours.tokensPerSecond)} tokens/s (first pass, cold cache: ${
      m(oursCold.tokensPerSecond)
    })`,
  );
  console.log(`  transformers.js ${m(theirs.tokensPerSecond)} tokens/s`);
  console.log(`  ratio           ${ratio.toFixed(2)}x`);
  Deno.mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  Deno.writeTextFileSync(RESULTS, JSON.stringify(results, null, 2) + "\n");
  return results;
}

if (import.meta.main) benchTokenizer();
