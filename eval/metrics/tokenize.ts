/**
 * Caption tokenization before scoring, and the word and n-gram splitting the scorers share.
 *
 * The COCO caption evaluation runs the Java PTB tokenizer and then drops punctuation. We use the rule in
 * ../shared/caption-data/README.md instead: it needs no Java and reproduces the published scores of real
 * model outputs to 3 decimals. It is idempotent, so already-tokenized text passes through unchanged.
 */

/** The characters COCO's evaluation removes as punctuation (`` and '' come out as ` and ' pieces). */
const PUNCTUATION = /[.,?!:;"`(){}]/g;

/** Tokens made only of quotes and dashes ("'", "''", "--") are leftover punctuation, not words. */
const QUOTES_AND_DASHES = /^['-]+$/;

/**
 * Python's str.split() whitespace (what pycocoevalcap's precook uses), which is not JS's \s: it adds the
 * separator controls U+001C..U+001F and NEL U+0085, and leaves out the BOM U+FEFF.
 */
// deno-lint-ignore no-control-regex -- the control characters are the point: Python treats them as spaces.
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Words as Python's `s.split()` gives them: runs of whitespace separate, ends yield no empty words. */
export function splitWords(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((w) => w !== "");
}

/**
 * Lowercase, punctuation to spaces, split on whitespace, drop quote/dash-only tokens, join with single
 * spaces. Apostrophes and hyphens inside words stay ("'s", "t-shirt"), as the PTB tokenizer leaves them.
 */
export function tokenizeCaption(caption: string): string {
  return splitWords(caption.toLowerCase().replace(PUNCTUATION, " "))
    .filter((w) => !QUOTES_AND_DASHES.test(w))
    .join(" ");
}

/**
 * Counts of the 1..n-grams of `words`, one Map per order (index k holds (k+1)-grams). Keys are the words
 * joined by a space, unambiguous because words never contain whitespace. Entries are inserted in the same
 * order as pycocoevalcap's precook fills its dict (order by order, left to right), so sums over them add
 * in the same order as the reference implementation.
 */
export function ngramCounts(words: readonly string[], n = 4): Map<string, number>[] {
  const counts: Map<string, number>[] = [];
  // grams[i] is the k-gram starting at word i, extended by one word per order.
  const grams = [...words];
  for (let k = 1; k <= n; k++) {
    if (k > 1) { for (let i = 0; i + k <= words.length; i++) grams[i] += " " + words[i + k - 1]; }
    const order = new Map<string, number>();
    for (let i = 0; i + k <= words.length; i++) order.set(grams[i], (order.get(grams[i]) ?? 0) + 1);
    counts.push(order);
  }
  return counts;
}
