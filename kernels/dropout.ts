// dropout mask: out[i] = scale if rand_bits(key, i) >> 8 >= threshold else 0, where
// threshold = round(p * 2^24) and scale = 1 / (1 - p). The integer comparison makes the mask
// bit-identical to the CPU reference (tensor/random.ts).   params: [n, key, threshold, scale bits]

import { MAIN, memoWGSL, PARAMS } from "./common.ts";
import { WGSL_PCG } from "../tensor/random.ts";

export const dropoutMaskWGSL = memoWGSL(() => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${WGSL_PCG}
${MAIN}
  if (i >= param(0)) { return; }
  out[i] = select(0.0, bitcast<f32>(param(3)), (rand_bits(param(1), i) >> 8u) >= param(2));
}`);
