// Caption cleaning as the seed meant it: keep the first two sentences (long LLM captions ramble on
// about lighting and mood), but never split inside "3.5 m", "J. R. R. Tolkien" or "Dr. Smith".

const ABBREVIATIONS = new Set(
  ("dr mr mrs ms prof st jr sr mt ft no vs etc approx inc ltd co corp ave rd blvd dept est fig jan " +
    "feb mar apr jun jul aug sep sept oct nov dec gen col capt lt sgt rev hon").split(" "),
);

/** Could the word just before a full stop end a sentence? Not if it is an abbreviation or an initial. */
function endsSentence(word: string): boolean {
  const bare = word.replace(/^[("'\[]+/, "").replace(/\.$/, "");
  if (/^[A-Za-z]$/.test(bare)) return false; // an initial: "J."
  if (/^([A-Za-z]\.)+[A-Za-z]?$/.test(bare)) return false; // "e.g", "i.e", "U.S"
  return !ABBREVIATIONS.has(bare.toLowerCase());
}

/** Split into sentences. A boundary is [.!?] plus whitespace; a full stop only counts when the word
 * before it can end a sentence and the next word does not start in lower case ("etc. and so on"). */
export function sentences(text: string): string[] {
  const out: string[] = [];
  const re = /[.!?]+["')\]]*\s+/g;
  let start = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const end = m.index + m[0].trimEnd().length;
    const punct = m[0].trimEnd();
    if (punct.startsWith(".") && !punct.startsWith("...")) {
      const before = text.slice(start, m.index + 1).split(/\s+/).pop() ?? "";
      const next = text[m.index + m[0].length] ?? "";
      if (!endsSentence(before) || /[a-z]/.test(next)) continue;
    }
    out.push(text.slice(start, end).trim());
    start = m.index + m[0].length;
  }
  const rest = text.slice(start).trim();
  if (rest) out.push(rest);
  return out;
}

/** Whitespace-normalised first `maxSentences` sentences. */
export function cleanCaption(text: string, maxSentences = 2): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return sentences(flat).slice(0, maxSentences).join(" ");
}

export function wordCount(text: string): number {
  return text.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
}

/** Clean every reference and drop those under `minWords` words; may return an empty list. */
export function cleanCaptions(captions: string[], minWords = 3, maxSentences = 2): string[] {
  return captions.map((c) => cleanCaption(c, maxSentences)).filter((c) => wordCount(c) >= minWords);
}
