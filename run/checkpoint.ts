// Checkpoints that survive a kill at any moment.
//
// A run folder holds checkpoints/step-<N>/ (each complete before it is named) and latest.json,
// a pointer replaced atomically (temp file + rename) only after the folder it names is complete:
// a reader sees the previous checkpoint or the new one, never half of one.
//
//   model.safetensors    weights, with the model config and vocabulary in the header's metadata,
//                        so this one file is enough to caption images (infer, the shipped model)
//   trainer.safetensors  optimizer moments
//   trainer.json         step, optimizer hyperparameters, RNG state, data position, run config

import { loadSafetensors, saveSafetensors, type Tensor } from "../tensor/mod.ts";
import { readSafetensorsHeader } from "../tensor/io/safetensors.ts";

export interface ModelFile {
  weights: Map<string, Tensor>;
  /** JSON-serialisable model config and vocabulary */
  meta: { config: unknown; vocab: string[] };
}

export interface TrainerState {
  step: number;
  optimizer: { stepCount: number; groups: Record<string, unknown>[] };
  rng: { seed: number; counter: number };
  data: unknown;
  run: unknown;
  /** the run's time so far and its evaluation's measured cost (run/budget.ts); absent in older runs */
  budget?: { seconds: number; evalSeconds: number | null };
}

export async function saveModel(path: string, m: ModelFile): Promise<void> {
  await saveSafetensors(path, m.weights, {
    config: JSON.stringify(m.meta.config),
    vocab: JSON.stringify(m.meta.vocab),
  });
}

/** The weights (on the active device) and the metadata of a model file, with errors naming the file. */
export async function loadModel(path: string): Promise<ModelFile> {
  const header = await readSafetensorsHeader(path);
  const { config, vocab } = header.metadata;
  if (!config || !vocab) throw new Error(`${path}: not a captioner model file (no config/vocab metadata)`);
  let meta: ModelFile["meta"];
  try {
    meta = { config: JSON.parse(config), vocab: JSON.parse(vocab) };
  } catch (e) {
    throw new Error(`${path}: malformed model metadata: ${(e as Error).message}`);
  }
  if (!Array.isArray(meta.vocab) || !meta.vocab.every((t) => typeof t === "string")) {
    throw new Error(`${path}: vocabulary metadata is not a list of strings`);
  }
  return { weights: await loadSafetensors(path), meta };
}

export interface Saved {
  model: ModelFile;
  optimizer: Map<string, Tensor>;
  trainer: TrainerState;
}

/** Writes checkpoints/step-N, then points latest.json at it; keeps the newest `keep` checkpoints. */
export async function saveCheckpoint(runDir: string, s: Saved, keep = 2): Promise<string> {
  const name = `step-${String(s.trainer.step).padStart(7, "0")}`;
  const dir = `${runDir}/checkpoints/${name}`, tmp = `${dir}.partial`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  await saveModel(`${tmp}/model.safetensors`, s.model);
  await saveSafetensors(`${tmp}/trainer.safetensors`, s.optimizer);
  await Deno.writeTextFile(`${tmp}/trainer.json`, JSON.stringify(s.trainer, null, 1) + "\n");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(tmp, dir);
  await Deno.writeTextFile(
    `${runDir}/latest.json.tmp`,
    JSON.stringify({ checkpoint: `checkpoints/${name}`, step: s.trainer.step }) + "\n",
  );
  await Deno.rename(`${runDir}/latest.json.tmp`, `${runDir}/latest.json`);
  const all = [];
  for await (const e of Deno.readDir(`${runDir}/checkpoints`)) {
    if (e.isDirectory && /^step-\d+$/.test(e.name)) all.push(e.name);
  }
  for (const old of all.sort().slice(0, Math.max(0, all.length - keep))) {
    await Deno.remove(`${runDir}/checkpoints/${old}`, { recursive: true });
  }
  return dir;
}

/** The checkpoint latest.json points at, or null when the run has none yet. */
export async function loadLatest(runDir: string): Promise<Saved | null> {
  let pointer: { checkpoint: string };
  try {
    pointer = JSON.parse(await Deno.readTextFile(`${runDir}/latest.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${runDir}/latest.json: ${(e as Error).message}`);
  }
  const dir = `${runDir}/${pointer.checkpoint}`;
  const trainer = JSON.parse(await Deno.readTextFile(`${dir}/trainer.json`)) as TrainerState;
  return {
    model: await loadModel(`${dir}/model.safetensors`),
    optimizer: await loadSafetensors(`${dir}/trainer.safetensors`),
    trainer,
  };
}
