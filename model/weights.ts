// Loading weights into a module from PyTorch checkpoints (.pth / .pt / .bin) or safetensors files.

import type { nn } from "../tensor/mod.ts";
import { type RawTensor, readSafetensors } from "../tensor/io/safetensors.ts";
import { readPth } from "./pth.ts";

/** Every tensor in the file by name, as host arrays; the format follows the extension. */
export async function readWeights(path: string): Promise<Map<string, RawTensor>> {
  if (path.endsWith(".safetensors")) {
    try {
      return (await readSafetensors(path)).tensors;
    } catch (e) {
      const msg = (e as Error).message;
      throw new Error(msg.includes(path) ? msg : `${path}: ${msg}`);
    }
  }
  if (/\.(pth|pt|bin|ckpt)$/.test(path)) return await readPth(path);
  throw new Error(`${path}: unknown weights format (expected .pth, .pt, .bin, .ckpt or .safetensors)`);
}

export interface LoadOptions {
  /** fail on missing or unexpected names (default true); shapes must always agree */
  strict?: boolean;
  /** names starting with any of these are dropped from the file first (e.g. "fc." for an encoder) */
  drop?: string[];
  /** prepended to every name in the file (e.g. "encoder." to load a ResNet into a captioner) */
  prefix?: string;
}

/** Copies the file's tensors into `module` by name; returns what was missing and unexpected. */
export async function loadWeights(
  module: nn.Module,
  path: string,
  { strict = true, drop = [], prefix = "" }: LoadOptions = {},
): Promise<{ missing: string[]; unexpected: string[] }> {
  const dict = new Map<string, RawTensor>();
  for (const [name, t] of await readWeights(path)) {
    if (!drop.some((d) => name.startsWith(d))) dict.set(prefix + name, t);
  }
  try {
    return module.loadStateDict(dict, { strict });
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
