/**
 * BLEU-1..4 (Papineni et al. 2002, "BLEU: a method for automatic evaluation of machine translation"), as
 * pycocoevalcap's Bleu(4) computes it (bleu/bleu_scorer.py, option "closest"): clipped n-gram counts and
 * lengths are summed over the whole corpus before taking precisions, so corpus BLEU is not a mean of
 * per-image scores.
 */

import { ngramCounts, splitWords } from "./tokenize.ts";

export const BLEU_MAX_ORDER = 4;

/**
 * pycocoevalcap's guards against 0/0 and log(0): `tiny` on the numerator keeps a zero precision at zero
 * (so an empty corpus scores 0, not NaN), `small` on the denominator keeps a candidate equal to its
 * reference at 0.99999999998 rather than 1. They shift scores far above 1e-12, so parity needs them.
 */
const TINY = 1e-15;
const SMALL = 1e-9;

/** Corpus totals, named as pycocoevalcap's `totalcomps` (integers). */
export interface BleuTotals {
  testlen: number;
  reflen: number;
  /** Per order: candidate n-gram positions, max(0, len - n + 1). */
  guess: number[];
  /** Per order: candidate n-grams matched, each clipped to its largest count in any single reference. */
  correct: number[];
}

export interface BleuResult {
  /** Corpus Bleu_1..Bleu_4. */
  scores: number[];
  /** perImage[k][i]: Bleu_(k+1) of image i on its own (pycocoevalcap's second return value). */
  perImage: number[][];
  totals: BleuTotals;
}

/**
 * The reference length whose distance to the candidate's is smallest, the shorter on a tie: Python's
 * `min((abs(l - testlen), l) for l in reflens)[1]`.
 */
function closestRefLength(refLengths: number[], testLength: number): number {
  let best = refLengths[0];
  for (const l of refLengths) {
    const d = Math.abs(l - testLength), bestD = Math.abs(best - testLength);
    if (d < bestD || (d === bestD && l < best)) best = l;
  }
  return best;
}

/**
 * Bleu_1..n from totals, with the brevity penalty exp(1 - r/c) when c < r. The ratio keeps the epsilon
 * terms so that c = 0 gives exp(-huge) = 0 instead of dividing by zero.
 */
function bleuFromCounts(
  testlen: number,
  reflen: number,
  guess: number[],
  correct: number[],
): number[] {
  const out: number[] = [];
  let product = 1;
  for (let k = 0; k < guess.length; k++) {
    product *= (correct[k] + TINY) / (guess[k] + SMALL);
    out.push(product ** (1 / (k + 1)));
  }
  const ratio = (testlen + TINY) / (reflen + SMALL);
  if (ratio < 1) {
    const penalty = Math.exp(1 - 1 / ratio);
    for (let k = 0; k < out.length; k++) out[k] *= penalty;
  }
  return out;
}

/** BLEU of tokenized `candidates[i]` against `references[i]` (each non-empty), over the whole corpus. */
export function bleu(candidates: readonly string[], references: readonly string[][]): BleuResult {
  const n = BLEU_MAX_ORDER;
  const totals: BleuTotals = { testlen: 0, reflen: 0, guess: Array(n).fill(0), correct: Array(n).fill(0) };
  const perImage: number[][] = Array.from({ length: n }, () => []);

  candidates.forEach((candidate, i) => {
    // A reference n-gram can vouch for a candidate n-gram at most as often as it occurs in one reference.
    const refLengths: number[] = [];
    const maxRefCounts = new Map<string, number>();
    for (const ref of references[i]) {
      const words = splitWords(ref);
      refLengths.push(words.length);
      for (const order of ngramCounts(words, n)) {
        for (const [gram, count] of order) {
          maxRefCounts.set(gram, Math.max(maxRefCounts.get(gram) ?? 0, count));
        }
      }
    }

    const words = splitWords(candidate);
    const testlen = words.length;
    const reflen = closestRefLength(refLengths, testlen);
    const guess = Array.from({ length: n }, (_, k) => Math.max(0, testlen - k));
    const correct = ngramCounts(words, n).map((order) => {
      let matched = 0;
      for (const [gram, count] of order) matched += Math.min(maxRefCounts.get(gram) ?? 0, count);
      return matched;
    });

    totals.testlen += testlen;
    totals.reflen += reflen;
    for (let k = 0; k < n; k++) {
      totals.guess[k] += guess[k];
      totals.correct[k] += correct[k];
    }
    bleuFromCounts(testlen, reflen, guess, correct).forEach((s, k) => perImage[k].push(s));
  });

  const scores = bleuFromCounts(totals.testlen, totals.reflen, totals.guess, totals.correct);
  return { scores, perImage, totals };
}
