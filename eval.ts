// `deno task eval`: caption metrics exactly as the COCO caption evaluation computes them (BLEU-1..4,
// CIDEr-D, ROUGE-L), grouped by image.
//
//   deno task eval --annotations refs.json --results results.json [--json]
//       scores a COCO results file against COCO annotations
//   deno task eval [--checkpoint model.safetensors] --data synthetic|manifest [--split test] [--images N]
//                  [--out results.json] [--beam 5] [--alpha 0.6] [--json]
//       captions the dataset's images with the model first (beam search), writes the results file,
//       then scores it

import { parseArgs } from "node:util";
import { type CaptionRecord, readRecords, startScenesServer } from "./data/mod.ts";
import { main as scoreFiles } from "./eval/score_cli.ts";
import { captionRecords } from "./run/evaluate.ts";
import { loadCaptioner, SHIPPED_MODEL } from "./run/load_captioner.ts";

const USAGE = `usage: deno task eval --annotations refs.json --results results.json [--json]
   or: deno task eval [--checkpoint FILE] --data synthetic|MANIFEST [--split test] [--images N]
                      [--out results.json] [--beam 5] [--alpha 0.6] [--seed 1] [--json]`;

export async function main(args: string[]): Promise<number> {
  if (args.includes("--annotations") || args.includes("--results")) return await scoreFiles(args);
  const { values } = parseArgs({
    args,
    options: {
      checkpoint: { type: "string" },
      data: { type: "string" },
      split: { type: "string", default: "test" },
      images: { type: "string", default: "500" },
      out: { type: "string" },
      beam: { type: "string", default: "5" },
      alpha: { type: "string", default: "0.6" },
      seed: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.data) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const loaded = await loadCaptioner(values.checkpoint ?? SHIPPED_MODEL);
  const n = Number(values.images);
  let records: CaptionRecord[], close = async () => {};
  if (values.data === "synthetic") {
    const split = values.split as "train" | "val" | "test";
    const size = loaded.imageSize;
    const server = await startScenesServer({
      seed: Number(values.seed),
      width: size,
      height: size,
      counts: { train: 0, val: n, test: n },
    });
    records = server.records(split);
    close = () => server.close();
  } else records = await readRecords(values.data);
  records = records.slice(0, n);
  try {
    const r = await captionRecords(loaded.model, loaded.tokenizer, records, {
      imageSize: loaded.imageSize,
      batch: 16,
      beam: Number(values.beam),
      alpha: Number(values.alpha),
    });
    if (values.out) {
      const results = [...r.captions].map(([image_id, caption]) => ({ image_id, caption }));
      await Deno.writeTextFile(values.out, JSON.stringify(results, null, 1) + "\n");
    }
    if (values.json) {
      console.log(JSON.stringify({ images: r.images, ...r.scores, seconds: +r.seconds.toFixed(1) }));
    } else {
      console.log(
        `${r.images} images captioned in ${r.seconds.toFixed(1)} s${
          values.out ? `; results in ${values.out}` : ""
        }`,
      );
      for (const [k, v] of Object.entries(r.scores)) console.log(`${k.padEnd(8)} ${v.toFixed(4)}`);
    }
    return 0;
  } finally {
    await close();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`eval: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
