/**
 * Scores a COCO results file against COCO annotations, as the COCO caption evaluation would:
 *   deno run -A eval/score_cli.ts --annotations refs.json --results results.json [--json]
 * The scoring half of `deno task eval`; main() is exported so eval.ts can hand it its arguments.
 */
import { parseArgs } from "node:util";
import {
  CaptionDataError,
  checkSameImages,
  readCocoAnnotations,
  readCocoResults,
  scoreCaptions,
} from "./metrics/mod.ts";

const USAGE = `usage: eval --annotations refs.json --results results.json [--json]
  --annotations  COCO captions: {"images": [{"id"}], "annotations": [{"image_id", "caption"}]}
  --results      COCO results: [{"image_id", "caption"}], one caption per image
  --json         print the scores as one JSON object
Scores BLEU-1..4, CIDEr-D and ROUGE-L as pycocoevalcap does, after COCO's tokenization. Every image
must appear in both files.`;

const METRICS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"] as const;

/** Runs the command on `args`; returns the exit status (0 ok, 1 bad data, 2 bad usage). */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        annotations: { type: "string" },
        results: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.annotations || !values.results) {
    console.error(`both --annotations and --results are needed\n${USAGE}`);
    return 2;
  }

  let scores;
  try {
    const refs = await readCocoAnnotations(values.annotations);
    const results = await readCocoResults(values.results);
    checkSameImages(refs, results, { references: values.annotations, candidates: values.results });
    scores = scoreCaptions(refs, results);
  } catch (e) {
    if (!(e instanceof CaptionDataError)) throw e;
    console.error(`eval: ${e.message}`);
    return 1;
  }

  const images = scores.perImage.imageIds.length;
  if (values.json) {
    const out: Record<string, unknown> = Object.fromEntries(METRICS.map((m) => [m, scores[m]]));
    console.log(JSON.stringify({ ...out, images, bleuTotals: scores.bleuTotals }));
  } else {
    console.log(`${images} images, ${values.results} against ${values.annotations}`);
    for (const m of METRICS) console.log(`${m.padEnd(8)} ${scores[m].toFixed(4)}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
