// WGSL shared by every kernel: the parameter binding, the flat thread index, and strided views.
//
// A "view" in the parameter array is 9 words: element offset, then 8 strides (unused dims 0).
// A "shape" is 9 words: ndim, then 8 sizes. Kernels walk the flat row-major index of the shape
// and map it into each operand's view, which is how broadcasting (stride 0), transposes and slices
// are read in place without copies.

import type { Shape } from "../tensor/shape.ts";
import { MAX_DIMS } from "../tensor/shape.ts";

/** Words of parameters a launch may pass (the uniform array's 32 vec4s). */
export const MAX_PARAMS = 128;

/**
 * The parameters are a uniform buffer, read through `param(i)`. On llvmpipe a storage-buffer
 * load is a loop over the 8 SIMD lanes with a bounds check each, and a uniform load whose address
 * is the same for every lane is one scalar load: a strided copy, which walks its view's shape and
 * strides in params for every element, runs 2.8x faster (bench/params_uniform.ts). Uniform arrays
 * have a 16-byte stride, hence vec4s.
 */
export const PARAMS = /* wgsl */ `@group(0) @binding(0) var<uniform> params: array<vec4<u32>, ${
  MAX_PARAMS / 4
}>;
fn param(i: u32) -> u32 { return params[i / 4u][i % 4u]; }`;

/**
 * A 1-D kernel's entry: thread i of workgroups of `size` threads in x (64 unless a tuned variant
 * says otherwise: the runtime's Dispatch.group), the grid folded into y when there are too many.
 */
export const main = (size = 64) =>
  /* wgsl */ `@compute @workgroup_size(${size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * ${size}u;`;

export const MAIN = main();

/**
 * Sum (or max) of v over the 64 threads of a workgroup, by a tree in workgroup memory; every
 * thread gets the result. Call it in uniform control flow.
 */
export const WG_REDUCE = /* wgsl */ `
var<workgroup> red: array<f32, 64>;
fn wg_reduce(v: f32, lid: u32, isMax: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = select(red[lid] + red[lid + s], max(red[lid], red[lid + s]), isMax); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

export const VIEW_OFFSET = /* wgsl */ `
// Offset in the operand of the flat index i over the shape at params[shapeAt] (ndim, sizes...),
// through the view at params[viewAt] (offset, strides...).
fn view_offset(i: u32, shapeAt: u32, viewAt: u32) -> u32 {
  var rem = i;
  var off = param(viewAt);
  for (var d = i32(param(shapeAt)) - 1; d >= 0; d = d - 1) {
    let size = param(shapeAt + 1u + u32(d));
    off = off + (rem % size) * param(viewAt + 1u + u32(d));
    rem = rem / size;
  }
  return off;
}`;

export interface ViewLike {
  shape: Shape;
  strides: Shape;
  offset: number;
}

export function shapeWords(shape: Shape): number[] {
  return [shape.length, ...pad8(shape)];
}

export function viewWords(v: { strides: Shape; offset: number }): number[] {
  return [v.offset, ...pad8(v.strides)];
}

function pad8(xs: Shape): number[] {
  return [...xs, ...new Array(MAX_DIMS - xs.length).fill(0)];
}

/** Bit pattern of an f32, for passing floats through the u32 parameter array. */
export function f32Bits(x: number): number {
  F32[0] = x;
  return U32[0];
}
const F32 = new Float32Array(1), U32 = new Uint32Array(F32.buffer);

/**
 * `generate`, remembering its WGSL per argument list. Ops ask for a kernel's code on every launch,
 * and the tuner and the pipeline cache look the code up by its text: building an unrolled kernel
 * anew took up to 0.4 ms (50 KB for a blocked attention pass), and a new string is hashed again at
 * each lookup, where the same string object keeps its hash.
 */
export function memoWGSL<A extends unknown[]>(generate: (...args: A) => string): (...args: A) => string {
  const known = new Map<string, string>();
  return (...args) => {
    const key = JSON.stringify(args);
    let code = known.get(key);
    if (code === undefined) known.set(key, code = generate(...args));
    return code;
  };
}
