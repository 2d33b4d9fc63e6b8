// Gathers up to SOURCES tensors into ranges of one flat buffer in one launch:
//   dst[at_s + j] = src_s[view_s(j)]  for j < n_s.
// The optimizers use it to pack every gradient into their flat buffers with ~1/6 of the launches
// one copy per tensor would take. A source that is contiguous is read as src[offset + j]; a strided
// one walks its view (9 words of shape, 9 of strides), which costs a division per dim: `strided`
// says which is which, compiled in.
//
// params: [per source s: n_s, at_s, shape (9 words), view (9 words)]
// Grid: y = the source, x = a grid-stride loop over its elements (64-thread workgroups, a quarter
// as many as the largest source has elements, up to GATHER_GROUPS), so each thread reads its
// source's parameters once for several elements. The caller groups sources of similar size.
// The binding limit (8 storage buffers per stage, the WebGPU default) bounds SOURCES + dst.

import { memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";

export const SOURCES = 6;
/** words of params per source */
export const SOURCE_WORDS = 20;
/** the most workgroups along x: past that, threads loop */
export const GATHER_GROUPS = 1024;

export const gatherWGSL = memoWGSL((strided: boolean[]) => /* wgsl */ `
${PARAMS}
${strided.map((_, s) => `@group(0) @binding(${s + 1}) var<storage, read> src${s}: array<f32>;`).join("\n")}
@group(0) @binding(${strided.length + 1}) var<storage, read_write> dst: array<f32>;
${VIEW_OFFSET}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = gid.y; let stride = nwg.x * 64u;
  let w = s * ${SOURCE_WORDS}u; let n = param(w); let at = param(w + 1u);
${
  strided.map((walk, s) => {
    // a flat source's offset is read before the loop: the stores may alias params for all the
    // compiler knows, and it would read it again after each
    const [first, from] = walk
      ? ["", `view_offset(j, w + 2u, w + 11u)`]
      : ["let src_at = param(w + 11u); ", "src_at + j"];
    return `  if (s == ${s}u) {
    ${first}for (var j = gid.x; j < n; j = j + stride) { dst[at + j] = src${s}[${from}]; }
  }`;
  }).join("\n")
}
}`);
