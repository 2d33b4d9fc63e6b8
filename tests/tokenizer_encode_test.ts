import { deepEqual, equal, notDeepEqual, throws } from "node:assert/strict";
import { basicTokenize, loadBertUncased, normalize, WordPiece } from "../tokenizer/mod.ts";
import { readCaptions } from "../tools/tokenizer_corpus.ts";

const bert = loadBertUncased();
const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];

Deno.test("known bert-base-uncased ids", () => {
  deepEqual(bert.encode("i like strawberries"), [1045, 2066, 13137, 20968]);
  deepEqual(bert.tokenize("I like strawberries"), ["i", "like", "straw", "##berries"]);
  deepEqual(bert.ids, { pad: 0, unk: 100, bos: 101, eos: 102 });
  equal(bert.tokenToId("the"), 1996);
  equal(bert.tokenToId("##s"), 2015);
  equal(bert.size, 30522);
});

Deno.test("cleaning drops controls, NUL and U+FFFD and treats every space as one", () => {
  const plain = bert.encode("a dog runs");
  for (
    const noisy of [
      "a\u0000 d\u0001og\u007f runs",
      "a \ufffddog runs",
      "a\u00a0dog\u3000runs\t",
      " a\n\rdog\u2028runs ",
    ]
  ) {
    deepEqual(bert.encode(noisy), plain, JSON.stringify(noisy));
  }
  deepEqual(bert.encode("do\u200bg"), bert.encode("dog"), "format characters (Cf) are controls too");
});

Deno.test("lowercasing and accent stripping", () => {
  deepEqual(bert.encode("Héllo WÖRLD café"), bert.encode("hello world cafe"));
  deepEqual(bert.encode("e\u0301"), bert.encode("e"), "a decomposed accent goes too");
  deepEqual(basicTokenize("İstanbul"), ["istanbul"], "the dot that lowercasing İ adds is a combining mark");
  deepEqual(basicTokenize("Ab", false), ["Ab"], "cased tokenizers keep case");
});

Deno.test("CJK ideographs are split apart, Hangul and kana are not", () => {
  deepEqual(basicTokenize("日本語"), ["日", "本", "語"]);
  deepEqual(basicTokenize("a\u{20000}b"), ["a", "\u{20000}", "b"], "beyond U+FFFF too");
  deepEqual(basicTokenize("한국어 カタカナ"), ["한국어", "カタカナ"].map((w) => w.normalize("NFD")));
});

Deno.test("punctuation by BERT's definition: ASCII symbols plus Unicode P*", () => {
  // "$", "^", "`", "+", "<" are symbols (S*) in Unicode, yet BERT splits on them.
  deepEqual(basicTokenize("a$b^c`d+e<f"), ["a", "$", "b", "^", "c", "`", "d", "+", "e", "<", "f"]);
  deepEqual(basicTokenize("¿qué?"), ["¿", "que", "?"]);
  deepEqual(basicTokenize("wait...what"), ["wait", ".", ".", ".", "what"]);
  deepEqual(basicTokenize("€5 ©"), ["€5", "©"], "non-ASCII symbols are not punctuation");
});

Deno.test("words over 100 code points, or not coverable, become one unknown token", () => {
  const unk = bert.ids.unk;
  notDeepEqual(bert.encode("a".repeat(100)), [unk]);
  deepEqual(bert.encode("a".repeat(101)), [unk]);
  notDeepEqual(bert.encode("é".repeat(100)), [unk], "counted after accents are stripped");
  deepEqual(bert.encode("😀".repeat(101)), [unk], "counted in code points, not UTF-16 units");
  deepEqual(bert.encode(`x ${"a".repeat(101)} y`), [...bert.encode("x"), unk, ...bert.encode("y")]);
});

Deno.test("greedy longest match first, and a word is unknown as a whole", () => {
  const tok = new WordPiece([...SPECIALS, "un", "una", "##aff", "##able", "##ffable", "a", "##b"]);
  // Longest first takes "una", although "un" + "##aff" + "##able" would also cover the word.
  deepEqual(tok.tokenize("unaffable"), ["una", "##ffable"]);
  deepEqual(tok.tokenize("abab"), ["[UNK]"], "no partial pieces before the unknown");
  deepEqual(tok.tokenize("ab abc"), ["a", "##b", "[UNK]"]);
  const astral = new WordPiece([...SPECIALS, "😀", "##😀"]);
  deepEqual(astral.tokenize("😀😀"), ["😀", "##😀"], "surrogate pairs are never cut in half");
});

Deno.test("decode joins continuations, drops special tokens and tidies spaces", () => {
  equal(bert.decode(bert.encode("A dog 's ball .")), "a dog's ball.");
  equal(bert.decode(bert.encode("I like strawberries")), "i like strawberries");
  const ids = bert.encode("two dogs , one ball");
  equal(bert.decode([bert.ids.bos, ...ids, bert.ids.eos, bert.ids.pad]), bert.decode(ids));
  equal(bert.decode([bert.tokenToId("[MASK]")!, ...ids]), bert.decode(ids));
  equal(bert.decode([]), "");
});

Deno.test("round trip: decode(encode(s)) is the normalised s", () => {
  const texts = [
    "A Black-and-White dog runs through the grass.",
    "Two children (twins) play; one laughs, the other doesn't!",
    "It costs 3.50 at 10:30 — really?",
    "Crème Brûlée and/or strawberries",
  ];
  for (const text of texts) equal(bert.decode(bert.encode(text)), normalize(text), text);
});

Deno.test("round trip on the Flickr8k captions: decoding loses nothing", () => {
  const captions = readCaptions();
  if (!captions) return void console.log("skipped: Flickr8k captions not found beside the repository");
  for (const caption of captions) {
    const ids = bert.encode(caption);
    const text = bert.decode(ids);
    // Every character comes back; only the spacing around punctuation changes ("dog 's" -> "dog's").
    equal(text.replaceAll(" ", ""), normalize(caption).replaceAll(" ", ""), caption);
    deepEqual(bert.encode(text), ids, caption);
  }
});

Deno.test("batch: begin and end tokens, padding, truncation that keeps the end token", () => {
  const texts = ["a dog", "a very small dog runs over the green grass", ""];
  const rows = texts.map((t) => [bert.ids.bos, ...bert.encode(t), bert.ids.eos]);
  const batch = bert.encodeBatch(texts);
  equal(batch.rows, 3);
  equal(batch.length, Math.max(...rows.map((r) => r.length)));
  deepEqual([...batch.lengths], rows.map((r) => r.length));
  rows.forEach((row, r) => {
    const got = [...batch.ids.subarray(r * batch.length, (r + 1) * batch.length)];
    deepEqual(got, [...row, ...Array(batch.length - row.length).fill(bert.ids.pad)]);
  });

  const short = bert.encodeBatch(texts, { maxLength: 5, padToMax: true });
  equal(short.length, 5);
  deepEqual([...short.ids.subarray(5, 10)], [...rows[1].slice(0, 4), bert.ids.eos]);
  deepEqual([...bert.encodeBatch(["a dog"], { addSpecials: false }).ids], bert.encode("a dog"));
  throws(() => bert.encodeBatch(texts, { maxLength: 1 }), /no room/);
});

Deno.test("bad input gives a clear error, not a crash", () => {
  for (const bad of [42, null, undefined, ["a"], { text: "a" }]) {
    throws(() => bert.encode(bad as unknown as string), /encode expects a string/);
  }
  throws(() => bert.decode("abc" as unknown as number[]), /decode expects an array/);
  throws(() => bert.decode([5, 30522]), /token id 30522 at position 1 is outside the vocabulary/);
  throws(() => bert.decode([1.5]), /token id 1.5/);
  // Lone surrogates are category Cs, a control to BERT: dropped like any other, never a crash.
  deepEqual(bert.encode("do\ud800g \udc00runs"), bert.encode("dog runs"));
  throws(() => new WordPiece(["[PAD]", "[CLS]", "[SEP]", "a"]), /no special token "\[UNK\]"/);
  throws(() => new WordPiece([...SPECIALS, "a"], { specials: { unk: "<unk>" } }), /no special token "<unk>"/);
});
