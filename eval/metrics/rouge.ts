/**
 * ROUGE-L (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries"), sentence level with
 * several references, as pycocoevalcap's Rouge computes it (rouge/rouge.py): the longest common
 * subsequence with each reference gives a precision and a recall; the best precision and the best recall
 * are taken independently (possibly from different references) and combined into an F-measure.
 */

/** Recall weighs beta^2 = 1.44 times precision, pycocoevalcap's choice. */
const BETA = 1.2;

/** Length of the longest common subsequence of two token lists (one DP row at a time). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      row[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length];
}

/**
 * ROUGE-L of one tokenized candidate against its references (at least one). Tokens come from splitting
 * on single spaces, as the reference does, so an empty string is one empty token, not zero tokens:
 * this keeps the divisions finite and makes an empty candidate match an empty reference.
 */
export function rougeL(candidate: string, references: readonly string[]): number {
  const c = candidate.split(" ");
  let precision = 0, recall = 0;
  for (const ref of references) {
    const r = ref.split(" ");
    const l = lcsLength(r, c);
    precision = Math.max(precision, l / c.length);
    recall = Math.max(recall, l / r.length);
  }
  if (precision === 0 || recall === 0) return 0;
  const b2 = BETA ** 2;
  return ((1 + b2) * precision * recall) / (recall + b2 * precision);
}
