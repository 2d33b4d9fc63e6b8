import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  countWords,
  coverage,
  loadBertUncased,
  requiredPieces,
  topKPieces,
  trainWordPiece,
  WordPiece,
} from "../tokenizer/mod.ts";
import { generateStrings, readCaptions } from "../tools/tokenizer_corpus.ts";

const bert = loadBertUncased();
const CORPUS = [
  "A dog runs through the grass .",
  "Two dogs are running on the beach .",
  "A skateboarder jumps over a railing .",
  "A man in a red shirt is climbing a rock wall .",
  "Children are playing in the snow .",
  "A girl in a pink dress jumps into the water .",
];
const hasUnk = (tok: WordPiece, text: string) => tok.encode(text).includes(tok.ids.unk);

Deno.test("top-K keeps specials first, then the corpus's most used pieces", () => {
  const words = countWords(CORPUS);
  const pieces = topKPieces(bert, words, 150);
  equal(pieces.length, 150);
  deepEqual(pieces.slice(0, 5), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  const small = new WordPiece(pieces, { specials: bert.specials });
  for (const text of CORPUS) {
    deepEqual(small.tokenize(text), bert.tokenize(text), "common words keep their pieces");
  }
  ok(!pieces.some((p) => p.startsWith("[unused")), "unreachable pieces never fill K");
});

Deno.test("top-K can still spell every word from the corpus's characters", () => {
  const words = countWords(CORPUS);
  const required = requiredPieces(bert, words).size;
  const small = new WordPiece(topKPieces(bert, words, required), { specials: bert.specials });
  equal(small.size, required);
  // Unseen words made of seen characters are spelled, at worst a character at a time; unseen characters
  // are the only way to an unknown token.
  for (const word of ["grasswall", "dresser", "wet", "snowman"]) ok(!hasUnk(small, word), word);
  ok(hasUnk(small, "zebra"), "no 'z' in the corpus");
  throws(() => topKPieces(bert, words, 20), /K = 20 is too small/);
});

Deno.test("coverage counts word occurrences and pieces", () => {
  const words = countWords(["dog dog unaffable", "\u{1F600}"]);
  const cov = coverage(bert, words);
  equal(cov.words, 4);
  equal(cov.known, 3 / 4, "the emoji is not in BERT's vocabulary");
  const pieces = 2 * bert.encode("dog").length + bert.encode("unaffable").length + 1;
  equal(cov.piecesPerWord, pieces / 4);
});

Deno.test("Flickr8k coverage: top-15K loses no word the full vocabulary knows", () => {
  const captions = readCaptions();
  if (!captions) return void console.log("skipped: Flickr8k captions not found beside the repository");
  const words = countWords(captions);
  const full = coverage(bert, words);
  const top = coverage(new WordPiece(topKPieces(bert, words, 15_000), { specials: bert.specials }), words);
  console.log(`full: ${JSON.stringify(full)}\ntop-15K: ${JSON.stringify(top)}`);
  equal(top.known, full.known);
  ok(top.piecesPerWord <= full.piecesPerWord * 1.01, "15K holds nearly every piece the captions use");
});

Deno.test("trainer: likelihood, not count, picks the merge", () => {
  // ("a", "##s") is the most common pair, but "x" and "y" only ever occur together: 10 / (10 * 10) beats
  // 50 / (1000 * 60). A count-based merger (BPE) would take "as" first.
  const corpus = [
    ..."xy ".repeat(10).split(" "),
    ..."as ".repeat(50).split(" "),
    ..."a ".repeat(950).split(" "),
  ];
  corpus.push(..."bs ".repeat(10).split(" "));
  const pieces = trainWordPiece(corpus, { vocabSize: 12, minFrequency: 1 });
  const initial = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "##s", "##y", "a", "b", "x"];
  deepEqual(pieces.slice(0, initial.length), initial);
  equal(pieces[initial.length], "xy");
});

Deno.test("trainer: deterministic, sized, honours min frequency and the alphabet limit", () => {
  const corpus = generateStrings(11, 300);
  const options = { vocabSize: 1500, minFrequency: 2 };
  const pieces = trainWordPiece(corpus, options);
  deepEqual(trainWordPiece([...corpus].reverse(), options), pieces, "the corpus's order does not matter");
  equal(pieces.length, 1500);
  equal(new Set(pieces).size, pieces.length);
  const tok = new WordPiece(pieces);
  const words = countWords(corpus);
  equal(coverage(tok, words).known, 1, "every training word can be spelled");

  // "qz" occurs once: it is merged at min frequency 1 only, however much room is left.
  const rare = ["qz", "ab", "ab"];
  ok(!trainWordPiece(rare, { vocabSize: 100, minFrequency: 2 }).includes("qz"));
  ok(trainWordPiece(rare, { vocabSize: 100, minFrequency: 1 }).includes("qz"));

  const limited = trainWordPiece(CORPUS, { vocabSize: 30, alphabetLimit: 3 });
  const chars = new Set(limited.slice(4).map((p) => p.replace(/^##/, "")).flatMap((p) => [...p]));
  ok(chars.size <= 3, `alphabet ${[...chars]}`);
  throws(() => trainWordPiece(CORPUS, { vocabSize: 10 }), /vocabSize 10 is below the \d+ special/);
});
