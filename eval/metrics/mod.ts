/**
 * Caption metrics equal to the COCO caption evaluation (pycocoevalcap Bleu(4), Cider, Rouge): BLEU-1..4,
 * CIDEr-D and ROUGE-L, with COCO's tokenization, grouped by image. Also readers for the COCO annotation
 * and result formats. Definitions and reference vectors: ../shared/caption-data/README.md.
 */

import { bleu, type BleuTotals } from "./bleu.ts";
import { ciderD } from "./cider.ts";
import { rougeL } from "./rouge.ts";
import { tokenizeCaption } from "./tokenize.ts";

export { type BleuTotals } from "./bleu.ts";
export { ngramCounts, splitWords, tokenizeCaption } from "./tokenize.ts";

export type ImageId = string | number;

export interface PerImageScores {
  /** The order of every array below: the references' image order. */
  imageIds: ImageId[];
  /** Each image's BLEU on its own (not what the corpus BLEU averages: that pools counts instead). */
  Bleu_1: number[];
  Bleu_2: number[];
  Bleu_3: number[];
  Bleu_4: number[];
  CIDEr: number[];
  ROUGE_L: number[];
}

export interface CaptionScores {
  Bleu_1: number;
  Bleu_2: number;
  Bleu_3: number;
  Bleu_4: number;
  CIDEr: number;
  ROUGE_L: number;
  perImage: PerImageScores;
  bleuTotals: BleuTotals;
}

export interface ScoreOptions {
  /**
   * Apply COCO's tokenization (tokenizeCaption) to every caption first. Default true; it is idempotent,
   * so pass false only to skip the work on text that is already tokenized.
   */
  tokenize?: boolean;
}

/** A problem with the caption files or maps given to the evaluation (shown to the user as is). */
export class CaptionDataError extends Error {
  override name = "CaptionDataError";
}

/**
 * np.mean: numpy adds float64 arrays pairwise (blocks of up to 128 with 8 running sums), not left to
 * right; repeating that keeps corpus means bit-identical to pycocoevalcap's instead of ~1e-15 off.
 */
export function numpyMean(values: readonly number[]): number {
  const pairwiseSum = (lo: number, n: number): number => {
    if (n < 8) {
      let s = 0;
      for (let i = lo; i < lo + n; i++) s += values[i];
      return s;
    }
    if (n <= 128) {
      const r = values.slice(lo, lo + 8);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[lo + i + j];
      let s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < n; i++) s += values[lo + i];
      return s;
    }
    const half = Math.floor(n / 2) - (Math.floor(n / 2) % 8);
    return pairwiseSum(lo, half) + pairwiseSum(lo + half, n - half);
  };
  return pairwiseSum(0, values.length) / values.length;
}

const showId = (id: ImageId) => JSON.stringify(id);

function describeMissing(ids: ImageId[], other: Map<ImageId, unknown>): string {
  const shown = ids.slice(0, 5).map(showId).join(", ") + (ids.length > 5 ? `, ... (${ids.length})` : "");
  // 1 and "1" are different keys; say so, since it is the usual cause.
  const typeMix = ids.some((id) => other.has(typeof id === "number" ? String(id) : Number(id)));
  return shown + (typeMix ? " (ids of one file are numbers and of the other strings)" : "");
}

/**
 * Every result image has references and every referenced image has a result, so no image is silently
 * left out of (or scored without references in) the corpus statistics. Throws CaptionDataError.
 */
export function checkSameImages(
  references: Map<ImageId, readonly string[]>,
  candidates: Map<ImageId, string>,
  names = { references: "references", candidates: "results" },
): void {
  const noRefs = [...candidates.keys()].filter((id) => !references.has(id));
  const noResult = [...references.keys()].filter((id) => !candidates.has(id));
  const problems: string[] = [];
  if (noRefs.length) {
    problems.push(
      `${noRefs.length} image(s) in ${names.candidates} have no ${names.references}: ` +
        describeMissing(noRefs, references),
    );
  }
  if (noResult.length) {
    problems.push(
      `${noResult.length} image(s) in ${names.references} have no caption in ${names.candidates}: ` +
        describeMissing(noResult, candidates),
    );
  }
  if (problems.length) throw new CaptionDataError(problems.join("; "));
}

/**
 * Scores one candidate caption per image against that image's references. Images are scored in the
 * references' order (pycocoevalcap iterates gts.keys()); only floating-point summation order depends on it.
 */
export function scoreCaptions(
  references: Map<ImageId, readonly string[]>,
  candidates: Map<ImageId, string>,
  options: ScoreOptions = {},
): CaptionScores {
  checkSameImages(references, candidates);
  if (references.size === 0) throw new CaptionDataError("no images to score");
  const prepare = options.tokenize === false ? (s: string) => s : tokenizeCaption;
  const imageIds = [...references.keys()];
  const refs = imageIds.map((id) => {
    const list = references.get(id)!;
    if (list.length === 0) throw new CaptionDataError(`image ${showId(id)} has no reference captions`);
    return list.map(prepare);
  });
  const cands = imageIds.map((id) => prepare(candidates.get(id)!));

  const b = bleu(cands, refs);
  const cider = ciderD(cands, refs);
  const rouge = cands.map((c, i) => rougeL(c, refs[i]));
  return {
    Bleu_1: b.scores[0],
    Bleu_2: b.scores[1],
    Bleu_3: b.scores[2],
    Bleu_4: b.scores[3],
    CIDEr: numpyMean(cider),
    ROUGE_L: numpyMean(rouge),
    perImage: {
      imageIds,
      Bleu_1: b.perImage[0],
      Bleu_2: b.perImage[1],
      Bleu_3: b.perImage[2],
      Bleu_4: b.perImage[3],
      CIDEr: cider,
      ROUGE_L: rouge,
    },
    bleuTotals: b.totals,
  };
}

// ---- COCO caption files ----

const typeName = (v: unknown) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v;

async function readJson(path: string | URL): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    throw new CaptionDataError(`${path}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CaptionDataError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Checks one { image_id, caption } entry; `where` is e.g. "annotations[3]". */
function captionEntry(entry: unknown, where: string, file: string): { id: ImageId; caption: string } {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new CaptionDataError(
      `${file}: ${where} should be an object {"image_id", "caption"}, got ${typeName(entry)}`,
    );
  }
  const { image_id: id, caption } = entry as Record<string, unknown>;
  if (typeof id !== "number" && typeof id !== "string") {
    throw new CaptionDataError(
      `${file}: ${where}.image_id should be a number or string, got ${typeName(id)}`,
    );
  }
  if (typeof caption !== "string") {
    throw new CaptionDataError(`${file}: ${where}.caption should be a string, got ${typeName(caption)}`);
  }
  return { id, caption };
}

/**
 * Parses COCO annotations ({ images?: [{ id }], annotations: [{ image_id, caption }] }) into each image's
 * reference captions, in first-appearance order (the images list's order when it is there). `file` names
 * the source in error messages.
 */
export function parseCocoAnnotations(json: unknown, file: string): Map<ImageId, string[]> {
  const root = json as Record<string, unknown>;
  if (typeName(json) !== "object" || !Array.isArray(root.annotations)) {
    const hint = Array.isArray(json) ? " (this looks like a results file)" : "";
    throw new CaptionDataError(
      `${file}: expected COCO annotations, an object with an "annotations" array${hint}`,
    );
  }
  const refs = new Map<ImageId, string[]>();
  const listed = root.images !== undefined;
  if (listed) {
    if (!Array.isArray(root.images)) {
      throw new CaptionDataError(`${file}: "images" should be an array, got ${typeName(root.images)}`);
    }
    root.images.forEach((image, i) => {
      const id = (image as Record<string, unknown> | null)?.id;
      if (typeof id !== "number" && typeof id !== "string") {
        throw new CaptionDataError(
          `${file}: images[${i}].id should be a number or string, got ${typeName(id)}`,
        );
      }
      refs.set(id, []);
    });
  }
  root.annotations.forEach((entry, i) => {
    const { id, caption } = captionEntry(entry, `annotations[${i}]`, file);
    const list = refs.get(id);
    if (list) list.push(caption);
    else if (listed) {
      throw new CaptionDataError(
        `${file}: annotations[${i}] has image_id ${showId(id)}, which "images" does not list`,
      );
    } else refs.set(id, [caption]);
  });
  const bare = [...refs].filter(([, list]) => list.length === 0).map(([id]) => id);
  if (bare.length) {
    throw new CaptionDataError(
      `${file}: ${bare.length} image(s) listed in "images" have no captions: ${
        describeMissing(bare, new Map())
      }`,
    );
  }
  return refs;
}

/**
 * Parses COCO results ([{ image_id, caption }]) into one caption per image. A second caption for the
 * same image is an error: the COCO evaluation scores exactly one per image.
 */
export function parseCocoResults(json: unknown, file: string): Map<ImageId, string> {
  if (!Array.isArray(json)) {
    const hint = typeName(json) === "object" && "annotations" in (json as object)
      ? " (this looks like an annotations file)"
      : "";
    throw new CaptionDataError(
      `${file}: expected COCO results, an array of {"image_id", "caption"}, got ${typeName(json)}${hint}`,
    );
  }
  const results = new Map<ImageId, string>();
  const firstIndex = new Map<ImageId, number>();
  json.forEach((entry, i) => {
    const { id, caption } = captionEntry(entry, `results[${i}]`, file);
    if (firstIndex.has(id)) {
      throw new CaptionDataError(
        `${file}: image_id ${showId(id)} has two captions (entries ${firstIndex.get(id)} and ${i}); ` +
          "the COCO evaluation scores one caption per image",
      );
    }
    firstIndex.set(id, i);
    results.set(id, caption);
  });
  return results;
}

/** Reads a COCO annotations file; throws CaptionDataError naming the file and the problem. */
export async function readCocoAnnotations(path: string | URL): Promise<Map<ImageId, string[]>> {
  return parseCocoAnnotations(await readJson(path), String(path));
}

/** Reads a COCO results file; throws CaptionDataError naming the file and the problem. */
export async function readCocoResults(path: string | URL): Promise<Map<ImageId, string>> {
  return parseCocoResults(await readJson(path), String(path));
}
