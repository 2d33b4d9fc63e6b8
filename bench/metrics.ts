/**
 * Time of the caption metrics on the 1,000-image Flickr8k test case (5 references each), split by
 * metric. Needs ../shared/caption-data/metric-vectors.json. Usage: deno run -A bench/metrics.ts [repeats]
 */
import { bleu } from "../eval/metrics/bleu.ts";
import { ciderD } from "../eval/metrics/cider.ts";
import { rougeL } from "../eval/metrics/rouge.ts";
import { scoreCaptions, tokenizeCaption } from "../eval/metrics/mod.ts";

const path = new URL("../../shared/caption-data/metric-vectors.json", import.meta.url);
let text: string;
try {
  text = Deno.readTextFileSync(path);
} catch {
  console.error(`${path.pathname} not found; this benchmark needs the shared caption data`);
  Deno.exit(1);
}
const vectors = JSON.parse(text) as {
  cases: {
    name: string;
    image_ids: string[];
    references: Record<string, string[]>;
    candidates: Record<string, string>;
  }[];
};
const c = vectors.cases.find((c) => c.name === "f8k_test_vit8k_all")!;
const refs = c.image_ids.map((id) => c.references[id]);
const cands = c.image_ids.map((id) => c.candidates[id]);
const repeats = Number(Deno.args[0] ?? 5);

function time(name: string, fn: () => unknown) {
  fn(); // warm-up: JIT
  const t0 = performance.now();
  for (let r = 0; r < repeats; r++) fn();
  console.log(`${name.padEnd(34)} ${((performance.now() - t0) / repeats).toFixed(1).padStart(8)} ms`);
}

console.log(`${c.image_ids.length} images, ${refs.flat().length} references, mean of ${repeats} runs`);
time("tokenize (all captions)", () => [...cands, ...refs.flat()].map(tokenizeCaption));
time("BLEU-1..4", () => bleu(cands, refs));
time("CIDEr-D", () => ciderD(cands, refs));
time("ROUGE-L", () => cands.map((h, i) => rougeL(h, refs[i])));
time("scoreCaptions (all, tokenizing)", () =>
  scoreCaptions(
    new Map(c.image_ids.map((id, i) => [id, refs[i]])),
    new Map(c.image_ids.map((id, i) => [id, cands[i]])),
  ));
