/**
 * Same ids as an independent implementation (transformers.js's BertTokenizer), pinned in
 * tests/fixtures/tokenizer_parity.json by tools/tokenizer_parity.ts, which also shows any mismatch in full.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { loadBertUncased } from "../tokenizer/mod.ts";
import {
  blockHashes,
  CAPTIONS_PATH,
  EDGE_CASES,
  generateStrings,
  hashTexts,
  readCaptions,
} from "../tools/tokenizer_corpus.ts";
import fixture from "./fixtures/tokenizer_parity.json" with { type: "json" };

const bert = loadBertUncased();
const REGENERATE = "rerun `deno run -A tools/tokenizer_parity.ts` to see the differing strings";

/** Names the first block whose fingerprint differs from the reference's. */
function compareBlocks(texts: string[], expected: string[], size: number, what: string) {
  const got = blockHashes(texts.map((t) => bert.encode(t)), size);
  equal(got.length, expected.length, `${what}: block count`);
  got.forEach((hash, b) => {
    equal(
      hash,
      expected[b],
      `${what} ${b * size}..${b * size + size - 1} differ from the reference; ${REGENERATE}`,
    );
  });
}

Deno.test("parity: hand-picked edge cases", () => {
  equal(hashTexts(EDGE_CASES), fixture.edgeCases.textHash, `the edge cases changed; ${REGENERATE}`);
  EDGE_CASES.forEach((text, i) =>
    deepEqual(bert.encode(text), fixture.edgeCases.ids[i], JSON.stringify(text))
  );
});

Deno.test("parity: 10,000 generated strings", () => {
  const { seed, count, blockSize, hashes } = fixture.generated;
  compareBlocks(generateStrings(seed, count), hashes, blockSize, "generated strings");
});

Deno.test("parity: the 40,460 Flickr8k captions", () => {
  const captions = readCaptions();
  if (!captions) return void console.log(`skipped: no captions at ${CAPTIONS_PATH.pathname}`);
  const { count, textHash, blockSize, hashes } = fixture.captions;
  equal(captions.length, count, "caption count");
  equal(hashTexts(captions), textHash, `the caption file changed; ${REGENERATE}`);
  compareBlocks(captions, hashes, blockSize, "captions");
});

Deno.test("parity: the corpus is big enough and was clean when generated", () => {
  const { compared, mismatches } = fixture.summary;
  ok(compared >= 10_000, `${compared} strings`);
  equal(mismatches, 0);
  ok(EDGE_CASES.length + fixture.generated.count >= 10_000, "at least 10,000 strings even without captions");
});
