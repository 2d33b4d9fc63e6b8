/**
 * BERT's "basic tokenizer": clean the text, space out CJK ideographs, lowercase, strip accents and split
 * on whitespace and punctuation. It follows Google's tokenization.py (and Hugging Face's BertNormalizer +
 * BertPreTokenizer) character class by character class, because any drift changes ids.
 *
 * Most captions are plain ASCII, so that case takes a table-driven path; everything else takes the
 * general path, which is written to mirror the reference step by step.
 */

// The ideograph blocks BERT spaces out. Hangul and kana are not here: BERT treats them as letters.
const CJK_RANGES: readonly [number, number][] = [
  [0x4e00, 0x9fff],
  [0x3400, 0x4dbf],
  [0x20000, 0x2a6df],
  [0x2a700, 0x2b73f],
  [0x2b740, 0x2b81f],
  [0x2b820, 0x2ceaf],
  [0xf900, 0xfaff],
  [0x2f800, 0x2fa1f],
];

export function isCjk(cp: number): boolean {
  for (const [lo, hi] of CJK_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

// BERT counts every "C*" category as control (Cc, Cf, Cs, Co and unassigned Cn), except the three
// whitespace controls. Whitespace is those three plus Zs; U+2028/U+2029 are also split on (Python's
// str.split does, Rust's is_whitespace agrees), so they count as whitespace here.
const OTHER = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;
const UNICODE_PUNCTUATION = /^\p{P}$/u;
const NONSPACING_MARKS = /\p{Mn}/gu;

export function isWhitespace(ch: string): boolean {
  return ch === " " || ch === "\t" || ch === "\n" || ch === "\r" || ch === "\u2028" || ch === "\u2029" ||
    SPACE_SEPARATOR.test(ch);
}

export function isControl(ch: string): boolean {
  return !isWhitespace(ch) && OTHER.test(ch);
}

/** BERT's punctuation: every non-alphanumeric ASCII symbol ("$", "^", "`" are not Unicode P*) plus P*. */
export function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
    (cp >= 123 && cp <= 126) || UNICODE_PUNCTUATION.test(ch);
}

/** Clean, space out CJK, lowercase and strip accents; whitespace stays as single spaces between words. */
export function normalize(text: string, lowercase = true): string {
  let out = "";
  for (const ch of text) {
    // U+FFFD is what a decoder leaves for bad bytes: BERT drops it rather than learn it.
    if (ch === "\0" || ch === "\uFFFD" || isControl(ch)) continue;
    if (isWhitespace(ch)) out += " ";
    else if (isCjk(ch.codePointAt(0)!)) out += ` ${ch} `;
    else out += ch;
  }
  // Lowercase before NFD, as BERT does: "İ" lowercases to "i" + a combining dot, which NFD then drops.
  if (lowercase) out = out.toLowerCase().normalize("NFD").replace(NONSPACING_MARKS, "");
  return out.split(" ").filter((w) => w !== "").join(" ");
}

/** Splits normalised text into words: runs of non-punctuation, and each punctuation mark on its own. */
function splitNormalized(text: string, words: string[]): void {
  for (const chunk of text.split(" ")) {
    let start = 0;
    let i = 0;
    for (const ch of chunk) {
      if (isPunctuation(ch)) {
        if (i > start) words.push(chunk.slice(start, i));
        words.push(ch);
        start = i + ch.length;
      }
      i += ch.length;
    }
    if (chunk.length > start) words.push(chunk.slice(start));
  }
}

// ASCII character classes for the fast path.
const DROP = 0, SPACE = 1, PUNCT = 2, WORD = 3;
const ASCII_CLASS = new Uint8Array(128).map((_, cp) => {
  if (cp === 9 || cp === 10 || cp === 13 || cp === 32) return SPACE;
  if (cp < 32 || cp === 127) return DROP;
  return isPunctuation(String.fromCharCode(cp)) ? PUNCT : WORD;
});

/** Splits text into BERT's basic-tokenized words, appending them to `words`. */
export function basicTokenize(text: string, lowercase = true, words: string[] = []): string[] {
  let ascii = true;
  let controls = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128) {
      ascii = false;
      break;
    }
    if (ASCII_CLASS[c] === DROP) controls = true;
  }
  if (!ascii) {
    const normalized = normalize(text, lowercase);
    if (normalized !== "") splitNormalized(normalized, words);
    return words;
  }
  if (controls) text = [...text].filter((ch) => ASCII_CLASS[ch.charCodeAt(0)] !== DROP).join("");
  if (lowercase) text = text.toLowerCase();
  let start = -1; // start of the current word, -1 between words
  for (let i = 0; i < text.length; i++) {
    const cls = ASCII_CLASS[text.charCodeAt(i)];
    if (cls === WORD) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) words.push(text.slice(start, i));
    start = -1;
    if (cls === PUNCT) words.push(text[i]);
  }
  if (start >= 0) words.push(text.slice(start));
  return words;
}
