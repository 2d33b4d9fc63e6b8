// `deno task infer img.png [more.jpg folder/ ...]`: captions images with a trained model (default:
// the shipped one). Every file that cannot be captioned gets one line saying why; the rest are still
// captioned, and the exit status is 1 if any failed.

import { parseArgs } from "node:util";
import { IDENTITY_PLAN, runDecodeJob } from "./data/mod.ts";
import { loadCaptioner, SHIPPED_MODEL } from "./run/load_captioner.ts";
import { gpu, tensor } from "./tensor/mod.ts";

const USAGE = `usage: deno task infer [options] image-or-folder ...
  --checkpoint FILE  model file (default: the shipped ${
  SHIPPED_MODEL.pathname.split("/").slice(-3).join("/")
})
  --beam K           beam size (default 5)        --alpha A   length normalisation (default 0.6)
  --greedy           greedy decoding instead of beam search
  --json             all beams with scores, and timing, as one JSON object
Folders contribute their .jpg/.jpeg/.png/.gif/.tif/.tiff files.`;

const IMAGE_EXT = /\.(jpe?g|png|gif|tiff?)$/i;
const REASONS: Record<string, string> = {
  not_image: "not an image",
  decode_error: "cannot decode",
  too_large: "too large",
  too_small: "too small",
};

interface Failure {
  file: string;
  error: string;
}

/** Files named directly, and the image files inside named folders (sorted). */
async function expand(paths: string[], failed: Failure[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    try {
      const st = await Deno.stat(p);
      if (!st.isDirectory) {
        out.push(p);
        continue;
      }
      const inside: string[] = [];
      for await (const e of Deno.readDir(p)) {
        if (e.isFile && IMAGE_EXT.test(e.name)) inside.push(`${p.replace(/\/$/, "")}/${e.name}`);
      }
      if (!inside.length) failed.push({ file: p, error: "folder holds no images" });
      out.push(...inside.sort());
    } catch (e) {
      failed.push({
        file: p,
        error: e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message,
      });
    }
  }
  return out;
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      checkpoint: { type: "string" },
      beam: { type: "string", default: "5" },
      alpha: { type: "string", default: "0.6" },
      greedy: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const beam = Number(values.beam), alpha = Number(values.alpha);
  if (!(Number.isInteger(beam) && beam >= 1) || !Number.isFinite(alpha)) {
    console.error(`infer: --beam must be a positive integer and --alpha a number\n${USAGE}`);
    return 2;
  }
  const t0 = performance.now();
  const { model, tokenizer, imageSize, mean, std } = await loadCaptioner(values.checkpoint ?? SHIPPED_MODEL);
  const loadMs = performance.now() - t0;
  const failed: Failure[] = [];
  const files = await expand(positionals, failed);
  const results: {
    file: string;
    caption: string;
    beams: { caption: string; score: number; logProb: number }[];
  }[] = [];

  const pixels: { file: string; data: Float32Array }[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      failed.push({
        file,
        error: e instanceof Deno.errors.NotFound ? "no such file" : `unreadable: ${(e as Error).message}`,
      });
      continue;
    }
    const r = await runDecodeJob({
      id: 0,
      bytes,
      size: imageSize,
      maxPixels: 64 << 20,
      minSide: 1,
      mean,
      std,
      plan: IDENTITY_PLAN,
    });
    if (r.ok) pixels.push({ file, data: r.pixels! });
    else failed.push({ file, error: `${REASONS[r.reason] ?? r.reason}: ${r.message}` });
  }
  const t1 = performance.now();
  for (let i = 0; i < pixels.length; i += 8) {
    const chunk = pixels.slice(i, i + 8), n = imageSize * imageSize * 3;
    const batch = new Float32Array(chunk.length * n);
    chunk.forEach((p, k) => batch.set(p.data, k * n));
    const images = tensor(batch, [chunk.length, 3, imageSize, imageSize]);
    const out = await model.generate(
      images,
      values.greedy ? { strategy: "greedy" } : { beamSize: beam, alpha, numReturn: beam },
    );
    images.dispose();
    out.forEach((c, k) => {
      const beams = (c.alternatives ?? [c]).map((h) => ({
        caption: tokenizer.decode(h.tokens),
        score: h.score,
        logProb: h.logProb,
      }));
      results.push({ file: chunk[k].file, caption: tokenizer.decode(c.tokens), beams });
    });
  }
  const captionMs = performance.now() - t1;
  if (values.json) {
    const timing = {
      loadMs: Math.round(loadMs),
      captionMs: Math.round(captionMs),
      perImageMs: results.length ? Math.round(captionMs / results.length) : null,
    };
    console.log(JSON.stringify({ adapter: gpu().adapter.description, results, failed, timing }, null, 1));
  } else {
    for (const r of results) console.log(`${r.file}: ${r.caption}`);
    for (const f of failed) console.error(`${f.file}: ${f.error}`);
  }
  return failed.length ? 1 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`infer: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
