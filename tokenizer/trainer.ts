/**
 * Learns a WordPiece vocabulary from a corpus. Every word starts as its characters ("d", "##o", "##g");
 * then, until the vocabulary is big enough, the adjacent pair with the best likelihood score
 *
 *     score(a, b) = freq(ab) / (freq(a) * freq(b))
 *
 * is merged everywhere. Dividing by the parts' frequencies prefers pairs that mostly occur together over
 * pairs that are merely common ("##s" follows everything), which is what separates WordPiece from BPE.
 * Every tie is broken by ids, so a corpus always gives the same vocabulary.
 */
import { DEFAULT_SPECIALS } from "./wordpiece.ts";
import { countWords } from "./topk.ts";

export interface TrainerOptions {
  /** Stop once the vocabulary has this many entries, special tokens included. */
  vocabSize: number;
  /** A pair must occur this often to be merged (default 2). */
  minFrequency?: number;
  /** Keep only this many of the most frequent characters; words with others are left out (default all). */
  alphabetLimit?: number;
  /** Special tokens, placed first (default [PAD], [UNK], [CLS], [SEP]). */
  specials?: string[];
  lowercase?: boolean;
}

interface Word {
  ids: number[];
  count: number;
}

export function trainWordPiece(texts: Iterable<string>, options: TrainerOptions): string[] {
  const { vocabSize, minFrequency = 2, alphabetLimit = Infinity, lowercase = true } = options;
  const specials = options.specials ?? Object.values(DEFAULT_SPECIALS);
  const counts = countWords(texts, lowercase);
  const alphabet = chooseAlphabet(counts, alphabetLimit);

  // Spell every word in characters ("d", "##o", "##g"); sorted, so the corpus's order does not matter.
  const spelled: [string[], number][] = [];
  for (const [word, count] of [...counts].sort(([a], [b]) => compare(a, b))) {
    const chars = [...word];
    if (chars.every((ch) => alphabet.has(ch))) {
      spelled.push([chars.map((ch, i) => i ? "##" + ch : ch), count]);
    }
  }
  // Initial pieces: the special tokens, then those characters.
  const pieces = [...specials];
  const index = new Map(pieces.map((p, i) => [p, i]));
  for (const piece of [...new Set(spelled.flatMap(([split]) => split))].sort(compare)) {
    if (!index.has(piece)) index.set(piece, pieces.push(piece) - 1);
  }
  if (pieces.length > vocabSize) {
    throw new Error(
      `vocabSize ${vocabSize} is below the ${pieces.length} special and single-character pieces`,
    );
  }
  const words = spelled.map(([split, count]) => ({ ids: split.map((p) => index.get(p)!), count }));

  const stats = new PairStats(words);
  while (pieces.length < vocabSize) {
    const best = stats.best(minFrequency);
    if (best === undefined) break;
    const [a, b] = best;
    const merged = pieces[a] + pieces[b].slice(2); // b is always a "##" piece
    let id = index.get(merged);
    if (id === undefined) index.set(merged, id = pieces.push(merged) - 1);
    stats.merge(a, b, id);
  }
  return pieces;
}

/** The `limit` most frequent characters, ties to the lower code point. */
function chooseAlphabet(counts: Map<string, number>, limit: number): Set<string> {
  const freq = new Map<string, number>();
  for (const [word, count] of counts) for (const ch of word) freq.set(ch, (freq.get(ch) ?? 0) + count);
  const ranked = [...freq].sort(([a, fa], [b, fb]) => fb - fa || compare(a, b));
  return new Set(ranked.slice(0, limit).map(([ch]) => ch));
}

/** Code point order, independent of locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// A pair of ids as one number: ids stay far below 2^26, so a * 2^26 + b is exact.
const SHIFT = 2 ** 26;
const pairKey = (a: number, b: number) => a * SHIFT + b;

/**
 * Piece and pair frequencies over the current splits, kept up to date merge by merge: a merge only
 * rewrites the words that hold the pair, so only their counts are taken out and put back.
 */
class PairStats {
  readonly #words: Word[];
  readonly #pieceFreq = new Map<number, number>();
  readonly #pairFreq = new Map<number, number>();
  readonly #wordsWithPair = new Map<number, Set<number>>();

  constructor(words: Word[]) {
    this.#words = words;
    words.forEach((_, w) => this.#count(w, +1));
  }

  /** The pair with the best score among those seen at least `minFrequency` times. */
  best(minFrequency: number): [number, number] | undefined {
    let best: number | undefined;
    let bestScore = -1, bestFreq = 0;
    for (const [key, freq] of this.#pairFreq) {
      if (freq < minFrequency) continue;
      const a = Math.floor(key / SHIFT), b = key % SHIFT;
      const score = freq / (this.#pieceFreq.get(a)! * this.#pieceFreq.get(b)!);
      if (
        score > bestScore || (score === bestScore && (freq > bestFreq || (freq === bestFreq && key < best!)))
      ) {
        best = key;
        bestScore = score;
        bestFreq = freq;
      }
    }
    return best === undefined ? undefined : [Math.floor(best / SHIFT), best % SHIFT];
  }

  /** Replaces every (a, b) with `merged`, left to right. */
  merge(a: number, b: number, merged: number): void {
    for (const w of [...(this.#wordsWithPair.get(pairKey(a, b)) ?? [])]) {
      this.#count(w, -1);
      const old = this.#words[w].ids;
      const ids: number[] = [];
      for (let i = 0; i < old.length; i++) {
        if (old[i] === a && old[i + 1] === b) {
          ids.push(merged);
          i++;
        } else ids.push(old[i]);
      }
      this.#words[w].ids = ids;
      this.#count(w, +1);
    }
  }

  /** Adds (sign +1) or removes (-1) word w's pieces and pairs. */
  #count(w: number, sign: 1 | -1): void {
    const { ids, count } = this.#words[w];
    for (let i = 0; i < ids.length; i++) {
      bump(this.#pieceFreq, ids[i], sign * count);
      if (i === 0) continue;
      const key = pairKey(ids[i - 1], ids[i]);
      bump(this.#pairFreq, key, sign * count);
      let holders = this.#wordsWithPair.get(key);
      if (!holders) this.#wordsWithPair.set(key, holders = new Set());
      if (sign > 0) holders.add(w);
      else holders.delete(w);
    }
  }
}

function bump(map: Map<number, number>, key: number, by: number): void {
  const value = (map.get(key) ?? 0) + by;
  if (value === 0) map.delete(key);
  else map.set(key, value);
}
