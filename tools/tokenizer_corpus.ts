/**
 * The strings the tokenizer is checked on against an independent implementation: hand-picked edge cases,
 * a seeded mix of fragments from hard corners of Unicode, and the Flickr8k captions. Shared by the fixture
 * generator (tools/tokenizer_parity.ts) and the parity test, so both see the same strings.
 */

import { createHash } from "node:crypto";

export const CAPTIONS_PATH = new URL(
  "../../shared/caption-data/flickr8k/Flickr8k.token.txt",
  import.meta.url,
);

/** The caption column of Flickr8k.token.txt ("image#n<TAB>caption" lines), or undefined if absent. */
export function readCaptions(path: URL | string = CAPTIONS_PATH): string[] | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  return text.split("\n").filter((line) => line !== "").map((line) => line.slice(line.indexOf("\t") + 1));
}

const long = (unit: string, n: number) => unit.repeat(n);

export const EDGE_CASES: readonly string[] = [
  // empty and whitespace
  "",
  " ",
  "\t\n\r ",
  "\u00a0\u2003\u3000",
  "a\u2028b\u2029c",
  // accents, ligatures, case
  "Héllo Wörld, naïve café, crème brûlée",
  "ÀÁÂÃÄÅ àáâãäå Çç Ñ ñ Øø",
  "e\u0301 e\u0300\u0323 o\u0308",
  "İstanbul ıi ß ẞ ǅ",
  "ΟΔΟΣ Σίσυφος ΣΑΣ",
  "ﬁne ﬂow Ａｂｃ ｘ² ½ Ⅻ",
  "Привет, мир! Ёлка",
  // CJK and other scripts
  "日本語のテキスト",
  "我喜欢吃草莓。",
  "\u{20000}\u{2A700}x\u{2B740}y\u{2F800}",
  "豈更車",
  "한국어 텍스트",
  "مرحبا بالعالم",
  "שלום עולם",
  "नमस्ते दुनिया",
  "สวัสดีครับ",
  // emoji
  "😀 a dog 🐕 on a 🏖️ beach",
  "👨‍👩‍👧‍👦 family 🇬🇧 flag 👍🏽",
  "❤️❤❤️",
  // numbers with punctuation
  "$1,000.50 and 3.14 at 10:30pm",
  "1/2 50% #1 +1-555-0100 (2x) 3rd 1e-9",
  "€5 £3 ¥100 ₹20",
  // URLs and markup
  "https://www.example.com/path?q=a+b&x=1#frag",
  "mail me at first.last@example.org",
  "<b>bold</b> & [brackets] {braces} `code` ^caret ~tilde |pipe \\slash",
  // repeated punctuation and symbols
  "!!! ??? ... ?!?! --- ___ ***",
  "wait...what?!",
  "“quoted” ‘single’ «guillemets» — en–dash … ellipsis",
  "∑∫√ ≤ ≥ → ©®™ ° §¶",
  // long words
  long("a", 100),
  long("a", 101),
  long("é", 100),
  long("ab", 51),
  `x ${long("supercalifragilistic", 30)} y`,
  long("😀", 101),
  // control characters and replacement
  "a\u0000b\u0001c\u007fd\u0085e",
  "tab\there\vvt\fff",
  "zero\u200bwidth soft\u00adhyphen \ufeffbom",
  "bad \ufffd byte",
  "lone \ud800 high \udfff low \udc00\ud800 reversed",
  "noncharacters \ufdd0 \uffff \u{10ffff}",
  // captions-like text
  "A dog 's ball .",
  "a black-and-white dog runs through the grass.",
  "Two children play on a see-saw in a park ; one laughs",
  "I can't believe it's not butter!",
];

/** Small deterministic PRNG (mulberry32), so the generated strings are the same on every run. */
export function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  ("a the dog dogs running runs over grass man woman girl boy child water ball red blue black white " +
    "jumps jumping playing beach snow street people two three wearing shirt strawberries unaffable " +
    "motorcyclist skateboarder bmx frisbee hiking").split(" ");
const SEPARATORS = [" ", " ", " ", "", "\t", "\u00a0", "\n", "  "];
// Ranges that exercise every branch of BERT's basic tokenizer.
const CODE_POINT_RANGES: readonly [number, number][] = [
  [0x00, 0x7f], // ASCII, controls included
  [0x80, 0x24f], // Latin-1 and Latin Extended
  [0x300, 0x36f], // combining marks
  [0x370, 0x4ff], // Greek, Cyrillic (with a few unassigned)
  [0x2000, 0x206f], // general punctuation, zero-width and bidi controls
  [0x3000, 0x30ff], // CJK punctuation, kana
  [0x4e00, 0x4fff], // CJK ideographs
  [0xac00, 0xac80], // Hangul syllables
  [0xfff0, 0xffff], // specials and noncharacters
  [0x1f300, 0x1f6ff], // emoji
  [0x20000, 0x20100], // CJK extension B
];

function randomCodePoint(rand: () => number): string {
  const [lo, hi] = CODE_POINT_RANGES[Math.floor(rand() * CODE_POINT_RANGES.length)];
  return String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
}

/** `count` strings of 1-12 fragments: words, edge-case snippets, random code points. */
export function generateStrings(seed: number, count: number): string[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = "";
    const fragments = 1 + Math.floor(rand() * 12);
    for (let f = 0; f < fragments; f++) {
      const r = rand();
      if (r < 0.5) s += pick(WORDS);
      else if (r < 0.6) s += pick(EDGE_CASES).slice(0, 1 + Math.floor(rand() * 20));
      else s += Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomCodePoint(rand)).join("");
      s += pick(SEPARATORS);
    }
    out.push(s);
  }
  return out;
}

/** A short fingerprint of many id rows, so the fixture can pin 40k captions in a few bytes per block. */
export function hashRows(rows: readonly (readonly number[])[]): string {
  return createHash("sha256").update(rows.map((ids) => ids.join(" ")).join("\n")).digest("hex").slice(0, 16);
}

/** A fingerprint of a list of strings (JSON escapes lone surrogates, so they count too). */
export function hashTexts(texts: readonly string[]): string {
  return createHash("sha256").update(JSON.stringify(texts)).digest("hex").slice(0, 16);
}

/** Fingerprints of consecutive blocks of `size` rows. */
export function blockHashes(rows: readonly (readonly number[])[], size: number): string[] {
  const hashes: string[] = [];
  for (let i = 0; i < rows.length; i += size) hashes.push(hashRows(rows.slice(i, i + size)));
  return hashes;
}
