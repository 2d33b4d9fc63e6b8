// fill: out[i] = value for i < n. One thread per element; value arrives as f32 (or i32) bits.

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export const fillWGSL = memoWGSL((type: "f32" | "i32") => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read_write> out: array<${type}>;
${MAIN}
  if (i >= param(0)) { return; }
  out[i] = bitcast<${type}>(param(1));
}`);
