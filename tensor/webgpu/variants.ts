// Kernel variants, and which one runs a call.
//
// An op with several kernels lists them here and dispatches through `runVariant`. For a call, the
// variants that fit it are the candidates; the one that runs is, in order:
//   1. the forced one (`forceVariant`: tests run every variant, benchmarks compare them),
//   2. the measured winner for the call's shape class on this adapter (tensor/webgpu/tuner.ts),
//   3. on first use of a shape class, all non-reference candidates, timed on the GPU; the call's
//      result is correct whichever ran last, and the winner serves every later call,
//   4. with tuning off (CAPTIONER_TUNE=0), the default for the adapter class.

import type { GemmConfig } from "../../kernels/gemm.ts";
import type { Vec4Block } from "../../kernels/matmul.ts";
import type { RowsConfig, WeightRowsConfig } from "../../kernels/conv2d_rows.ts";
import type { ConvTiledConfig } from "../../kernels/conv2d_tiled.ts";
import type { TiledConfig } from "../../kernels/matmul_tiled.ts";
import type { TextureBlock } from "../../kernels/matmul_texture.ts";
import type { AttentionBlock } from "../../kernels/attention_block.ts";
import type { AttentionTileConfig } from "../../kernels/attention_tiled.ts";
import { gpu } from "../storage.ts";
import type { Dispatch } from "./runtime.ts";
import { tuner } from "./tuner.ts";

export interface Variant {
  name: string;
  /** a correctness reference: never chosen by the tuner */
  reference?: boolean;
  gemm?: GemmConfig;
  /** the vec4 matmul's block per thread */
  vec4?: Vec4Block;
  /** conv2d's row-tiled kernel (forward, and the input gradient of stride-1 convs) */
  rows?: RowsConfig;
  /** conv2d's weight-gradient row kernel */
  wrows?: WeightRowsConfig;
  /** the register-blocked attention kernels (kernels/attention_block.ts) */
  attnBlock?: AttentionBlock;
  /** the workgroup-tiled attention kernels (kernels/attention_tiled.ts) */
  attnTile?: AttentionTileConfig;
  /** the matmul reading its operands packed into textures */
  texture?: TextureBlock;
  /** the workgroup-tiled matmul */
  tiled?: TiledConfig;
  /** conv2d's workgroup-tiled implicit GEMMs (kernels/conv2d_tiled.ts), split-K for the weight gradient */
  convTiled?: ConvTiledConfig;
  /** row kernels (softmax, layerNorm): one workgroup per row instead of one thread */
  rowGroup?: boolean;
  /** only tuned on real GPUs: measured slower on CPU adapters, and kept out of their tuning keys */
  gpuOnly?: boolean;
}

// the fused attention passes: one row per thread (any layout), R rows with vec4 loads, or (real
// GPUs) a workgroup per block of rows walking tiles of the other side in workgroup memory
const ATTENTION: Variant[] = [
  { name: "row" },
  ...[2, 4, 8].map((rows) => ({ name: `block${rows}`, attnBlock: { rows } })),
  // the same reading q, k, v and dO as texels (CPU adapters: only there does the op make the textures)
  ...[4, 8].map((rows) => ({ name: `tblock${rows}`, attnBlock: { rows, texture: true } })),
  // and 8 rows two keys (forward, dQ) or queries (dK/dV) a step: each of the 8 x D/4 accumulators,
  // too many for a CPU's registers, is loaded and stored once per two rows of the other side; in
  // workgroups of 64 threads, or of 16 where a pass has a few workgroups' worth of threads and 64
  // would leave one core idle at its end
  { name: "tblock8c2", attnBlock: { rows: 8, texture: true, step: 2 } },
  { name: "tblock8c2g16", attnBlock: { rows: 8, texture: true, step: 2, group: 16 } },
  { name: "tiled32", attnTile: { bc: 32, split: 1 }, gpuOnly: true },
  { name: "tiled16s2", attnTile: { bc: 16, split: 2 }, gpuOnly: true },
];

// the row kernels (kernels/rows.ts): a thread per row, or a workgroup per row
const ROWS: Variant[] = [{ name: "thread" }, { name: "group", rowGroup: true }];

export const VARIANTS: Record<string, Variant[]> = {
  matmul: [
    { name: "naive", reference: true },
    { name: "vec4_4x4", vec4: { tm: 4, tnv: 1 } },
    { name: "vec4_8x4", vec4: { tm: 8, tnv: 1 } },
    { name: "vec4_8x8", vec4: { tm: 8, tnv: 2 } },
    { name: "vec4_16x8", vec4: { tm: 16, tnv: 2 } },
    { name: "vec4_16x16", vec4: { tm: 16, tnv: 4 } },
    { name: "vec4_16x32", vec4: { tm: 16, tnv: 8 } },
    { name: "vec4_32x32", vec4: { tm: 32, tnv: 8 } },
    // the same blocks with the SIMD lanes along m: a product of a few column blocks (N = 96: 3
    // of 8 lanes busy the other way) fills every lane
    { name: "vec4_16x32m", vec4: { tm: 16, tnv: 8, mLanes: true } },
    { name: "vec4_32x32m", vec4: { tm: 32, tnv: 8, mLanes: true } },
    // weight gradients (few outputs, long k): split k so that more than one core has work
    { name: "vec4_16x16s4", vec4: { tm: 16, tnv: 4, splitK: 4 } },
    { name: "vec4_32x32s4", vec4: { tm: 32, tnv: 8, splitK: 4 } },
    { name: "vec4_32x32s8", vec4: { tm: 32, tnv: 8, splitK: 8 } },
    // operands packed into textures, which llvmpipe reads 7-10x faster than storage buffers
    { name: "tex_8x8", texture: { tm: 8, tnv: 2 } },
    { name: "tex_8x16", texture: { tm: 8, tnv: 4 } },
    { name: "tex_16x16", texture: { tm: 16, tnv: 4 } },
    { name: "blocked4x4", gemm: { tm: 4, tn: 4, wx: 8, wy: 8 } },
    { name: "blocked1x4", gemm: { tm: 1, tn: 4, wx: 64, wy: 1 } },
    { name: "blocked4x8", gemm: { tm: 4, tn: 8, wx: 8, wy: 8 } },
    { name: "blocked8x8", gemm: { tm: 8, tn: 8, wx: 8, wy: 8 } },
    { name: "vec4_16x4", vec4: { tm: 16, tnv: 1 }, gpuOnly: true },
    { name: "tiled4x4", tiled: { tm: 4, tn: 4, bk: 16 }, gpuOnly: true },
    { name: "tiled8x8", tiled: { tm: 8, tn: 8, bk: 8 }, gpuOnly: true },
    { name: "tiled8x4", tiled: { tm: 8, tn: 4, bk: 8 }, gpuOnly: true },
    // half the barriers per fma of tiled8x8, for 16.5 KiB of workgroup memory (where granted); and
    // 128 x 256 tiles: 12 fmas per workgroup-memory read instead of 8, for 128 accumulators a thread
    { name: "tiled8x8k16", tiled: { tm: 8, tn: 8, bk: 16 }, gpuOnly: true },
    { name: "tiled8x16", tiled: { tm: 8, tn: 16, bk: 8 }, gpuOnly: true },
  ],
  conv2d: [
    { name: "direct", reference: true },
    { name: "gemm4x4", gemm: { tm: 4, tn: 4, wx: 8, wy: 8 } },
    { name: "gemm4x8", gemm: { tm: 4, tn: 8, wx: 8, wy: 8 } },
    { name: "gemm8x4", gemm: { tm: 8, tn: 4, wx: 8, wy: 8 } },
    { name: "gemm8x8", gemm: { tm: 8, tn: 8, wx: 8, wy: 8 } },
    { name: "rows16x8", rows: { tm: 16, tn: 8 } },
    { name: "rows16x14", rows: { tm: 16, tn: 14 } },
    { name: "rows8x28", rows: { tm: 8, tn: 28 } },
    // two or four rows per thread share each weight load (measured: 20-25% faster at batch 32)
    { name: "rows16x8r2", rows: { tm: 16, tn: 8, tr: 2 } },
    { name: "rows8x8r4", rows: { tm: 8, tn: 8, tr: 4 } },
    // the same, reading the input and weights as texels (stride 1)
    { name: "trows8x8r4", rows: { tm: 8, tn: 8, tr: 4, texture: true } },
    { name: "trows16x8r2", rows: { tm: 16, tn: 8, tr: 2, texture: true } },
    // and the input's planes unpadded, copied rather than packed (W a multiple of 4)
    { name: "prows8x8r4", rows: { tm: 8, tn: 8, tr: 4, texture: true, planes: true } },
    { name: "prows16x8r2", rows: { tm: 16, tn: 8, tr: 2, texture: true, planes: true } },
    // forward and input gradient; M = Cog or Cig is often 64, so a 64-row tile with 128 columns
    { name: "tiled4x4", convTiled: { tm: 4, tn: 4, bk: 16 }, gpuOnly: true },
    { name: "tiled4x8", convTiled: { tm: 4, tn: 8, bk: 16 }, gpuOnly: true },
    { name: "tiled8x8", convTiled: { tm: 8, tn: 8, bk: 8 }, gpuOnly: true },
  ],
  softmax: ROWS,
  layerNorm: ROWS,
  layerNorm_grad: ROWS,
  attention: ATTENTION,
  attention_dq: ATTENTION,
  // the dK/dV pass's threads own key rows, and 7 to a thread cut the 49 image tokens of a 7 x 7
  // feature map (ResNet at 224 px) into whole blocks: cross-attention's dK/dV 12-15% faster than
  // with 4 or 8 (bench/RESULTS.md step 84). Its calls' form: the block size that fits their keys
  attention_dkv: [
    ...ATTENTION,
    { name: "tblock7c2", attnBlock: { rows: 7, texture: true, step: 2 } },
    { name: "tblock7c2g16", attnBlock: { rows: 7, texture: true, step: 2, group: 16 } },
  ],
  // the weight gradient's GEMM has a long k loop (N * OH * OW) and a small output: split-K pays
  conv2d_weight: [
    { name: "direct", reference: true },
    { name: "gemm4x4", gemm: { tm: 4, tn: 4, wx: 8, wy: 8 } },
    { name: "gemm8x8", gemm: { tm: 8, tn: 8, wx: 8, wy: 8 } },
    { name: "gemm4x4s8", gemm: { tm: 4, tn: 4, wx: 8, wy: 8, splitK: 8 } },
    { name: "gemm4x4s32", gemm: { tm: 4, tn: 4, wx: 8, wy: 8, splitK: 32 } },
    { name: "gemm8x8s16", gemm: { tm: 8, tn: 8, wx: 8, wy: 8, splitK: 16 } },
    { name: "wrows8x2", wrows: { tco: 8, tci: 2, splits: 1 } },
    { name: "wrows16x2", wrows: { tco: 16, tci: 2, splits: 1 } },
    { name: "wrows8x2s8", wrows: { tco: 8, tci: 2, splits: 8 } },
    // the same, reading x and dy as texels (stride 1)
    { name: "twrows8x2", wrows: { tco: 8, tci: 2, splits: 1, texture: true } },
    { name: "twrows16x2", wrows: { tco: 16, tci: 2, splits: 1, texture: true } },
    { name: "twrows8x4", wrows: { tco: 8, tci: 4, splits: 1, texture: true } },
    { name: "twrows8x2s4", wrows: { tco: 8, tci: 2, splits: 4, texture: true } },
    { name: "tiled8x8", convTiled: { tm: 8, tn: 8, bk: 8 }, gpuOnly: true },
    { name: "tiled8x8s8", convTiled: { tm: 8, tn: 8, bk: 8, splitK: 8 }, gpuOnly: true },
    { name: "tiled4x4s16", convTiled: { tm: 4, tn: 4, bk: 16, splitK: 16 }, gpuOnly: true },
  ],
};

/** The ops whose calls name their form (Dims.form); their keys without one are from before it. */
export const FORMED_OPS = new Set(["matmul", "conv2d", "conv2d_weight", "attention_dkv"]);

/**
 * Whether a tuning key (op|class|form|candidates, or op|class|candidates for unformed ops) can
 * still be asked for: its candidates all exist and it has a form exactly when its op takes one.
 */
export function keyIsCurrent(key: string): boolean {
  const parts = key.split("|"), op = parts[0];
  const names = parts.at(-1)!.split(",");
  return parts.length === (FORMED_OPS.has(op) ? 4 : 3) &&
    names.every((n) => VARIANTS[op]?.some((v) => v.name === n));
}

const forced = new Map<string, string>();

/** Forces `op` to use the named variant (null: automatic again). */
export function forceVariant(op: string, name: string | null): void {
  if (name === null) forced.delete(op);
  else if (!VARIANTS[op]?.some((v) => v.name === name)) throw new Error(`no variant ${name} of ${op}`);
  else forced.set(op, name);
}

export interface Dims {
  M: number;
  N: number;
  K: number;
  /**
   * What else shapes the candidates' code (operand layout, geometry compiled in): calls that differ
   * in it are measured apart. Without it a transposed product and a plain one of one size class
   * shared a winner, whichever was measured last (seen: the 4 x 4 block picked for a 2048 x 96 x 64
   * product it ran 4x slower than the 32 x 32 one).
   */
  form?: string;
}

/** A variant's launch: one dispatch, or a sequence (e.g. split-K partials, then their sum). */
export type Launch = Dispatch | Dispatch[];

const steps = (l: Launch): Dispatch[] => (Array.isArray(l) ? l : [l]);

/** Dispatches `build(variant)` for the variant chosen as described above. */
export function runVariant(
  op: string,
  dims: Dims,
  fits: (v: Variant) => boolean,
  build: (v: Variant) => Launch,
): void {
  const run = (l: Launch) => steps(l).forEach((d) => gpu().run(d));
  const fitting = VARIANTS[op].filter(fits);
  if (fitting.length === 0) {
    throw new Error(`${op} ${JSON.stringify(dims)}: no kernel variant fits this call`);
  }
  const pinned = fitting.find((v) => v.name === forced.get(op));
  if (pinned) return run(build(pinned));
  const cpuAdapter = gpu().adapter.fallback;
  const candidates = fitting.filter((v) => !v.reference && !(cpuAdapter && v.gpuOnly));
  if (candidates.length <= 1) return run(build(candidates[0] ?? fitting[0]));
  if (FORMED_OPS.has(op) !== (dims.form !== undefined)) {
    throw new Error(`internal: ${op} called without its form`);
  }
  const form = dims.form ? `|${dims.form}` : "";
  const key = `${op}|${shapeClass(dims)}${form}|${candidates.map((v) => v.name).join(",")}`;
  const codeOf = (l: Launch) => steps(l).map((d) => d.code).join("\n");
  const known = candidates.find((v) => v.name === tuner.winner(key));
  if (known) {
    const launch = build(known);
    if (tuner.confirm(key, codeOf(launch), () => candidates.map((v) => codeOf(build(v))))) return run(launch);
  }
  if (!tuner.enabled || tuner.measuring(key)) {
    return run(build(candidates.find((v) => v.name === defaultFor(op, dims, candidates)) ?? candidates[0]));
  }
  tuner.measure(key, candidates.map((v) => v.name), candidates.map((v) => steps(build(v))));
}

/** Dims rounded to powers of two: calls of similar size share a measurement. */
function shapeClass({ M, N, K }: Dims): string {
  const b = (x: number) => 2 ** Math.round(Math.log2(Math.max(1, x)));
  return `${b(M)}x${b(N)}x${b(K)}`;
}

/** Untuned choice: register blocking for CPU adapters (measured on llvmpipe), big tiles elsewhere. */
function defaultFor(op: string, { M, N, K }: Dims, fitting: Variant[]): string {
  const names = fitting.map((v) => v.name);
  if (op === "matmul") {
    if (M <= 2) return "blocked1x4";
    if (names.includes("tiled8x8")) return M * N >= 2 ** 16 ? "tiled8x8" : "tiled4x4";
    return names.includes("vec4_16x8") ? "vec4_16x8" : "blocked4x8";
  }
  if (op === "conv2d") {
    // real GPUs (the tiled variants are candidates): workgroup tiles once there are enough of them
    if (names.includes("tiled8x8") && M * N >= 2 ** 16) return M > 64 ? "tiled8x8" : "tiled4x8";
    return names.includes("rows16x8") ? "rows16x8" : "gemm8x4";
  }
  if (op === "conv2d_weight") {
    // a small output over a long k: many split-K slices; a larger one needs fewer (and partial
    // sums too large for any split leave tiled8x8)
    if (names.includes("tiled8x8") && M * N * K >= 2 ** 24) {
      const split = M * N <= 2 ** 18 ? "tiled4x4s16" : "tiled8x8s8";
      return names.includes(split) ? split : "tiled8x8";
    }
    return "gemm4x4s8";
  }
  // tiled where it fits (never on CPU adapters: gpuOnly); the backward holds 3-4 head-sized rows per
  // row, which two threads per row halve before they spill (reasoned from register counts, not timed)
  if (op.startsWith("attention")) {
    const order = op === "attention" ? ["tiled32", "tiled16s2"] : ["tiled16s2", "tiled32"];
    return order.find((n) => names.includes(n)) ?? names[0];
  }
  return names[0];
}
