/**
 * Smaller vocabularies cut from a pretrained one, fitted to a caption corpus, and the coverage numbers
 * that tell whether the cut lost anything.
 */
import { basicTokenize, isPunctuation } from "./basic.ts";
import { WordPiece } from "./wordpiece.ts";

/** How often each word occurs, after BERT's basic tokenization. */
export function countWords(texts: Iterable<string>, lowercase = true): Map<string, number> {
  const counts = new Map<string, number>();
  const words: string[] = [];
  for (const text of texts) {
    words.length = 0;
    for (const word of basicTokenize(text, lowercase, words)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

/**
 * The K pieces of `tokenizer` that a corpus uses most, kept in their original order (so special tokens
 * keep the lowest ids). The `requiredPieces` come before any frequent piece.
 */
export function topKPieces(tokenizer: WordPiece, words: Map<string, number>, k: number): string[] {
  const pieces = tokenizer.pieces;
  const required = requiredPieces(tokenizer, words);
  if (required.size > k) {
    throw new Error(
      `K = ${k} is too small: the special tokens and single characters alone need ${required.size}`,
    );
  }
  const frequency = new Float64Array(pieces.length);
  const ids: number[] = [];
  for (const [word, count] of words) {
    ids.length = 0;
    for (const id of tokenizer.encodeWord(word, ids)) frequency[id] += count;
  }
  // Most frequent first; ties, including the pieces the corpus never uses but which fill out K, go to the
  // lower id (BERT's ids roughly follow frequency in its own training text).
  const byFrequency = pieces.map((_, id) => id).filter((id) => !required.has(id) && reachable(pieces[id]))
    .sort((a, b) => frequency[b] - frequency[a] || a - b);
  const kept = new Set([...required, ...byFrequency.slice(0, k - required.size)]);
  return pieces.filter((_, id) => kept.has(id));
}

/**
 * Whether encoding can ever produce `piece`. Punctuation is always a word of its own, so pieces such as
 * "[unused7]" or "##." are dead weight in a small vocabulary.
 */
function reachable(piece: string): boolean {
  const body = piece.startsWith("##") ? piece.slice(2) : piece;
  const chars = [...body];
  if (chars.some(isPunctuation)) return chars.length === 1 && body === piece;
  return true;
}

/**
 * The special tokens and every single-character piece ("x" at a word start, "##x" inside) the corpus
 * words need. With those, any word the full vocabulary can spell is still spelled, one character at a time
 * if need be, so only truly unspellable words become unknown.
 */
export function requiredPieces(tokenizer: WordPiece, words: Map<string, number>): Set<number> {
  const required = new Set<number>();
  for (let id = 0; id < tokenizer.size; id++) if (tokenizer.isSpecial(id)) required.add(id);
  for (const word of words.keys()) {
    let first = true;
    for (const ch of word) {
      const id = tokenizer.tokenToId(first ? ch : "##" + ch);
      if (id !== undefined) required.add(id);
      first = false;
    }
  }
  return required;
}

export interface Coverage {
  /** Word occurrences counted. */
  words: number;
  /** Share of word occurrences encoded without the unknown token. */
  known: number;
  /** Mean pieces per word occurrence. */
  piecesPerWord: number;
}

export function coverage(tokenizer: WordPiece, words: Map<string, number>): Coverage {
  let total = 0, known = 0, pieceCount = 0;
  const ids: number[] = [];
  for (const [word, count] of words) {
    ids.length = 0;
    tokenizer.encodeWord(word, ids);
    total += count;
    pieceCount += ids.length * count;
    if (!ids.includes(tokenizer.ids.unk)) known += count;
  }
  return { words: total, known: known / total, piecesPerWord: pieceCount / total };
}
