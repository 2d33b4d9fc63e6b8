// deno task convert in.pth out.safetensors
//
// Rewrites a PyTorch checkpoint's state dict as safetensors (float tensors as F32, integer ones as
// I32), reading the pickle without executing it (model/pth.ts).

import { writeSafetensors } from "./tensor/io/safetensors.ts";
import { readPth } from "./model/pth.ts";

export async function convert(input: string, output: string): Promise<number> {
  const tensors = await readPth(input);
  await writeSafetensors(output, tensors, { format: "pt", source: input.split("/").at(-1)! });
  return tensors.size;
}

if (import.meta.main) {
  const [input, output, ...rest] = Deno.args;
  if (!input || !output || rest.length || !output.endsWith(".safetensors")) {
    console.error("usage: deno task convert in.pth out.safetensors");
    Deno.exit(2);
  }
  try {
    const n = await convert(input, output);
    console.log(`${output}: ${n} tensors from ${input}`);
  } catch (e) {
    console.error(`convert: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
