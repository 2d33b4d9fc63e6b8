// Gathers up to SOURCES tensors, each any strided view, into ranges of one flat buffer in one
// launch: dst[at_s + j] = src_s[view_s(j)] for j < n_s. The optimizers use it to pack every
// gradient into their flat buffers with ~1/6 of the launches one copy per tensor would take.
//
// params: [total, then per source s: end_s (cumulative count), at_s, shape (9 words), view (9 words)]
// One thread per element of the launch; it finds its source by comparing against the cumulative ends.
// The binding limit (8 storage buffers per stage, the WebGPU default) bounds SOURCES: params + 6 + dst.

import { MAIN, PARAMS, VIEW_OFFSET } from "./common.ts";

export const SOURCES = 6;
/** words of params per source */
export const SOURCE_WORDS = 20;

const range = (n: number) => [...Array(n).keys()];

export const gatherWGSL = (k: number) => /* wgsl */ `
${PARAMS}
${range(k).map((s) => `@group(0) @binding(${s + 1}) var<storage, read> src${s}: array<f32>;`).join("\n")}
@group(0) @binding(${k + 1}) var<storage, read_write> dst: array<f32>;
${VIEW_OFFSET}
${MAIN}
  if (i >= params[0]) { return; }
${
  range(k).map((s) => {
    const at = 1 + s * SOURCE_WORDS, start = s === 0 ? "0u" : `params[${at - SOURCE_WORDS}u]`;
    return `  if (i < params[${at}u]) {
    let j = i - ${start};
    dst[params[${at + 1}u] + j] = src${s}[view_offset(j, ${at + 2}u, ${at + 11}u)];
    return;
  }`;
  }).join("\n")
}
}`;
