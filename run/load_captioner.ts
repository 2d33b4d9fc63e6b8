// A trained captioner from its model file (weights + config + vocabulary in one .safetensors).

import { IMAGENET_MEAN, IMAGENET_STD } from "../data/mod.ts";
import { Captioner, type CaptionerConfig } from "../model/captioner.ts";
import type { WordPiece } from "../tokenizer/mod.ts";
import { loadModel } from "./checkpoint.ts";
import { vocabTokenizer } from "./vocab.ts";

/** The model config as saved: the captioner's plus how its images were prepared. */
export type SavedConfig = CaptionerConfig & { imageSize: number; mean?: number[]; std?: number[] };

export interface LoadedCaptioner {
  model: Captioner;
  tokenizer: WordPiece;
  imageSize: number;
  mean: readonly number[];
  std: readonly number[];
}

/** The shipped model: made by `deno task train` with the default preset (see models/tiny/README.md). */
export const SHIPPED_MODEL = new URL("../models/tiny/model.safetensors", import.meta.url);

/** A model file, or a run folder (runs/tiny) standing for the model file it wrote. */
export async function loadCaptioner(path: string | URL = SHIPPED_MODEL): Promise<LoadedCaptioner> {
  let file = path instanceof URL ? path.pathname : path;
  if ((await Deno.stat(file).catch(() => null))?.isDirectory) {
    file = `${file.replace(/\/+$/, "")}/model.safetensors`;
    if (!(await Deno.stat(file).catch(() => null))) {
      throw new Error(`${path}: a folder without model.safetensors (give a model file or a run folder)`);
    }
  }
  const { weights, meta } = await loadModel(file);
  const config = meta.config as SavedConfig;
  if (!config || typeof config.vocabSize !== "number" || typeof config.imageSize !== "number") {
    throw new Error(`${file}: model config lacks vocabSize or imageSize`);
  }
  const model = new Captioner(config);
  try {
    model.loadStateDict(weights);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  } finally {
    for (const t of weights.values()) t.dispose();
  }
  model.eval();
  return {
    model,
    tokenizer: vocabTokenizer(meta.vocab),
    imageSize: config.imageSize,
    mean: config.mean ?? IMAGENET_MEAN,
    std: config.std ?? IMAGENET_STD,
  };
}
