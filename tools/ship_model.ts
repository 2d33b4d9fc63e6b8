// Copies a finished run's model into models/<name>/ with a README giving the exact command, the
// machine and the held-out scores, so `deno task infer` works on a fresh clone.
//   deno run -A tools/ship_model.ts runs/tiny [models/tiny]

const [run, dest = "models/tiny"] = Deno.args;
if (!run) {
  console.error("usage: deno run -A tools/ship_model.ts RUN_FOLDER [DEST]");
  Deno.exit(2);
}
const m = JSON.parse(await Deno.readTextFile(`${run}/metrics.json`));
await Deno.mkdir(dest, { recursive: true });
await Deno.copyFile(`${run}/model.safetensors`, `${dest}/model.safetensors`);
const size = (await Deno.stat(`${dest}/model.safetensors`)).size;
const fmt = (o: Record<string, number>) =>
  Object.entries(o).map(([k, v]) => `| ${k} | ${v.toFixed(4)} |`).join("\n");
await Deno.writeTextFile(
  `${dest}/README.md`,
  `# The shipped model

Made by \`${m.command}\` on ${m.adapter} (2 CPU cores, no GPU): ${m.steps} steps in
${Math.round(m.trainSeconds / 60)} min of training, ${
    Math.round(m.totalSeconds / 60)
  } min in all. ${m.parameters} parameters,
${(size / 1e6).toFixed(2)} MB. \`deno task infer\` uses it when no \`--checkpoint\` is given.

Held-out synthetic scenes (${m.images} test images, beam search as configured; COCO caption metrics
grouped by image):

| metric | score |
| --- | --- |
${fmt(m.heldOut)}

Always answering the most frequent training caption ("${m.baseline.caption}") scores
BLEU-4 ${m.baseline.scores.Bleu_4.toFixed(4)} and CIDEr ${m.baseline.scores.CIDEr.toFixed(4)}.
`,
);
console.log(`shipped ${run} to ${dest} (${(size / 1e6).toFixed(2)} MB)`);
