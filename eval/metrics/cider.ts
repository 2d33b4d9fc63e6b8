/**
 * CIDEr-D (Vedantam et al. 2015, "CIDEr: Consensus-based Image Description Evaluation"), as pycocoevalcap's
 * Cider() computes it (cider/cider_scorer.py): TF-IDF vectors of 1..4-grams, cosine similarity per order
 * with the candidate's weights clipped to the reference's, a gaussian penalty on the length difference
 * (sigma 6), averaged over orders and references and scaled by 10.
 *
 * The IDF is taken over the references of the images being scored, not a fixed corpus, so an image's
 * score depends on which other images are in the set (a single image always scores 0: every IDF is 0).
 */

import { ngramCounts, splitWords } from "./tokenize.ts";

const ORDERS = 4;
const SIGMA = 6;

/** One sentence's TF-IDF vector per order, the per-order norms, and the length used by the penalty. */
interface NgramVector {
  weights: Map<string, number>[];
  norms: number[];
  length: number;
}

/**
 * pycocoevalcap's counts2vec. Two details matter for parity: an n-gram absent from every reference gets
 * df 1 (idf ln N), and the "length" is the number of bigram occurrences (its `if n == 1` tests the
 * 0-based order), which equals words - 1 and so gives the same length differences as word counts
 * whenever both sentences have words; an empty side scores 0 anyway.
 */
function toVector(counts: Map<string, number>[], logImages: number, df: Map<string, number>): NgramVector {
  const norms: number[] = [];
  const weights = counts.map((order) => {
    const w = new Map<string, number>();
    let squares = 0;
    for (const [gram, tf] of order) {
      const weight = tf * (logImages - Math.log(Math.max(1, df.get(gram) ?? 0)));
      w.set(gram, weight);
      squares += weight ** 2;
    }
    norms.push(Math.sqrt(squares));
    return w;
  });
  let length = 0;
  for (const tf of counts[1].values()) length += tf;
  return { weights, norms, length };
}

/** Per-order similarity of candidate `h` to reference `r` (pycocoevalcap's sim). */
function similarity(h: NgramVector, r: NgramVector): number[] {
  const delta = h.length - r.length;
  // Math.E ** x rather than Math.exp(x): the reference writes np.e ** x, a pow() call.
  const penalty = Math.E ** (-(delta ** 2) / (2 * SIGMA ** 2));
  return h.weights.map((hw, n) => {
    let val = 0;
    for (const [gram, wh] of hw) {
      // The "D" clipping: a candidate repeating an n-gram cannot gain beyond the reference's weight.
      const wr = r.weights[n].get(gram) ?? 0;
      val += Math.min(wh, wr) * wr;
    }
    if (h.norms[n] !== 0 && r.norms[n] !== 0) val /= h.norms[n] * r.norms[n];
    return val * penalty;
  });
}

/** CIDEr-D of each tokenized `candidates[i]` against `references[i]`; the corpus score is their mean. */
export function ciderD(candidates: readonly string[], references: readonly string[][]): number[] {
  const refCounts = references.map((refs) => refs.map((ref) => ngramCounts(splitWords(ref), ORDERS)));

  // Document frequency: in how many images' reference sets (pooled, so an image counts once) g occurs.
  const df = new Map<string, number>();
  for (const refs of refCounts) {
    const seen = new Set<string>();
    for (const counts of refs) for (const order of counts) for (const gram of order.keys()) seen.add(gram);
    for (const gram of seen) df.set(gram, (df.get(gram) ?? 0) + 1);
  }
  // ln N with N = the number of images scored (pycocoevalcap's log(float(len(self.crefs)))).
  const logImages = Math.log(references.length);

  return candidates.map((candidate, i) => {
    const h = toVector(ngramCounts(splitWords(candidate), ORDERS), logImages, df);
    const sums = Array(ORDERS).fill(0);
    for (const counts of refCounts[i]) {
      similarity(h, toVector(counts, logImages, df)).forEach((s, n) => sums[n] += s);
    }
    // np.mean over the 4 orders adds left to right from 0 for so few terms; then / refs, x 10.
    let total = 0;
    for (const s of sums) total += s;
    return total / ORDERS / refCounts[i].length * 10;
  });
}
