// conv2d's three implicit GEMMs, workgroup-tiled through shared memory: the variants for real GPUs.
//
//   forward      y[n, co, oh, ow]   = sum_{ci, kh, kw} x[n, g*Cig + ci, ih, iw] * w[co, ci, kh, kw],
//                                     ih = oh*sh - ph + kh*dh, iw = ow*sw - pw + kw*dw
//   input grad   dx[n, c, ih, iw]   = sum over the (co, kh, kw) whose tap lands on (ih, iw) of dy * w
//   weight grad  dw[co, ci, kh, kw] = sum_{n, oh, ow} dy[n, co, oh, ow] * x[n, g*Cig + ci, ih, iw]
//
// Layouts: x, y, dx, dy NCHW; w [Cout, Cin/G, KH, KW]; G groups of Cig = Cin/G input and Cog =
// Cout/G output channels, one group per z slice. As GEMMs (the same products as kernels/conv2d.ts):
//
//   forward  M = Cog, N = N*OH*OW, K = Cig*KH*KW   A[m, k] = w           B[k, n] = im2col(x)
//   input    M = Cig, N = N*H*W,   K = Cog*KH*KW   A[m, k] = w at tap k  B[k, n] = dy where tap k of
//                                                                        input position n lands
//   weight   M = Cog, N = Cig*KH*KW, K = N*OH*OW   A[m, k] = dy          B[k, n] = im2col(x)^T
//
// Tiling: the loop of kernels/matmul_tiled.ts (`tiledGemmWGSL`), 16 x 16 = 256 threads owning a
// BM x BN tile of C (BM = 16 * TM, BN = 16 * TN), TM x TN accumulators per thread (rows 64 apart
// in groups of 4, so a warp's vec4 reads of workgroup memory fall on distinct banks), and per slab
// of BK along k, A's BM x BK and B's BK x BN slabs copied into workgroup memory (k-major, rows
// padded by one vec4), the next slab fetched into registers while this one is multiplied.
// There is no im2col buffer: the slab copy *is* the im2col gather. Each of a thread's slab
// elements has a fixed row of A or column of B, whose part of the address (the image, the
// channel group, the output position's input origin, or the tap's offset) is worked out once
// before the loop; per slab only k is decomposed, into (ci, kh, kw), (co, kh, kw) or (n, oh, ow),
// by divisions by constants (the geometry is compiled in, `convConsts`). Consecutive threads take
// the operand's contiguous dim, so the gathers coalesce for stride 1: columns of im2col(x) and of
// the input gradient's dy (neighbouring output positions are neighbouring floats), k for the
// weight rows and for both operands of the weight gradient (k = (n, oh, ow) runs along rows of x
// and dy). Padding, taps between strides and k past K read as zeros: the address is replaced by 0
// (or clamped) and the value by 0.0, so no load leaves its buffer. Rows and columns past
// M / N are clamped on load and skipped on store.
// Workgroup memory is 4 * BK * (BM + BN + 8) bytes, within WebGPU's guaranteed 16 KiB for the
// configurations used (tensor/webgpu/variants.ts); 256 invocations is the guaranteed maximum.
//
// The input gradient of a strided conv keeps every tap in K and zeroes the taps that fall between
// strides (as the register-blocked GEMM does), so at stride 2 three quarters of its k loop
// multiplies zeros; splitting it into stride phases is left for when a profile on a GPU asks.
// Split-K (weight gradient only, `splitK` S): z = G * S, slice s runs k in [s * C, (s + 1) * C) with
// C a multiple of BK, and writes partial sums [S, Cout, Cig, KH, KW] that kernels/gemm.ts's
// splitSumWGSL adds; the weight gradient's output is small and its K long, so without it few
// workgroups would run.
// The forward takes the convolution epilogue (kernels/epilogue.ts): scale, shift, residual and
// ReLU applied at the store, bound between the inputs and `out` as in the other forward kernels.
//
// Workgroup-memory tiling only pays on real GPUs (on llvmpipe the tiled matmul does 1.6 GFLOPS
// against 12-14 for register blocking): these variants are gpuOnly, tuned only on real GPUs, and
// their speed has not been measured on this project's CPU-only build machine.
// params: [G] (unused by the shader: everything it needs is compiled in).

import { memoWGSL, PARAMS } from "./common.ts";
import { convConsts, type ConvDims } from "./conv2d.ts";
import { type Epilogue, epilogueBuffers, epilogueDecls, epilogueExpr } from "./epilogue.ts";
import { slabIndex, type TiledConfig, tiledGemmWGSL } from "./matmul_tiled.ts";

export type ConvPass = "forward" | "input" | "weight";

export interface ConvTiledConfig extends TiledConfig {
  /** k chunks per group, each writing a partial sum (weight gradient only) */
  splitK?: number;
}

/** The implicit GEMM's [M, N, K] (see the header). */
function gemmDims(which: ConvPass, { N, Cin, H, W, Cout, OH, OW, KH, KW, G }: ConvDims) {
  const [Cig, Cog] = [Cin / G, Cout / G];
  if (which === "forward") return [Cog, N * OH * OW, Cig * KH * KW];
  if (which === "input") return [Cig, N * H * W, Cog * KH * KW];
  return [Cog, Cig * KH * KW, N * OH * OW];
}

/** One GEMM operand: how its slab is gathered. */
interface Operand {
  /** the dim consecutive threads take when copying a slab: the one contiguous in memory */
  fast: "k" | "mn";
  /** statements fixing what slab element e's loads need from its (clamped) row or column `rc` */
  fixed: (e: number, rc: string) => string;
  /** element e at k, 0.0 past K */
  load: (e: number, k: string) => string;
}

interface Pass {
  /** binding 1 and 2's names, in the order tensor/ops/conv.ts binds them */
  inputs: [string, string];
  A: Operand;
  B: Operand;
  /** gather helpers */
  helpers: string;
  /** fn store(bt, m, n, rows, cols, v): C[m, n .. n + 3] of slice bt */
  store: string;
}

// k's decomposition and the bounds test are the only per-slab work; `ok` also guards the address
// (0 when out of bounds), so no load reads outside its binding.
const PASSES: Record<ConvPass, (e?: Epilogue) => Pass> = {
  forward: (e) => ({
    inputs: ["x", "w"],
    A: {
      fast: "k",
      fixed: (i, rc) => `let wo${i} = (g * Cog + ${rc}) * K;`,
      load: (i, k) => `select(0.0, w[wo${i} + min(${k}, K - 1u)], ${k} < K)`,
    },
    B: {
      fast: "mn",
      fixed: (i, rc) =>
        `let c${i} = ${rc}; let xo${i} = (c${i} / OHW * Cin + g * Cig) * H * W;
  let ih${i} = i32(c${i} % OHW / OW) * sh - ph; let iw${i} = i32(c${i} % OW) * sw - pw;`,
      load: (i, k) => `im2col(${k}, xo${i}, ih${i}, iw${i})`,
    },
    helpers: /* wgsl */ `
// x[n, g*Cig + ci, ih0 + kh*dh, iw0 + kw*dw] for k = (ci, kh, kw); xo = (n * Cin + g * Cig) * H * W
fn im2col(k: u32, xo: u32, ih0: i32, iw0: i32) -> f32 {
  let r = k % KHW;
  let ih = ih0 + i32(r / KW) * dh; let iw = iw0 + i32(r % KW) * dw;
  let ok = k < K && u32(ih) < H && u32(iw) < W;
  return select(0.0, x[select(0u, xo + (k / KHW * H + u32(ih)) * W + u32(iw), ok)], ok);
}`,
    store: /* wgsl */ `
fn store(g: u32, m: u32, n: u32, rows: u32, cols: u32, v: vec4<f32>) {
  if (m >= rows) { return; }
  let co = g * Cog + m;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (n + j < cols) {
      let o = ((n + j) / OHW * Cout + co) * OHW + (n + j) % OHW;
      out[o] = ${epilogueExpr(e, "v[j]", { s: "scale[co]", h: "shift[co]", r: "res[o]" })};
    }
  }
}`,
  }),
  input: () => ({
    inputs: ["dy", "w"],
    A: {
      fast: "k",
      fixed: (i, rc) => `let wo${i} = (g * Cog * Cig + ${rc}) * KHW;`,
      load: (i, k) => `wTap(${k}, wo${i})`,
    },
    B: {
      fast: "mn",
      fixed: (i, rc) =>
        `let c${i} = ${rc}; let yo${i} = (c${i} / HW * Cout + g * Cog) * OHW;
  let y${i} = i32(c${i} % HW / W) + ph; let x${i} = i32(c${i} % W) + pw;`,
      load: (i, k) => `dyTap(${k}, yo${i}, y${i}, x${i})`,
    },
    helpers: /* wgsl */ `
// w[g*Cog + co, ci, kh, kw] for k = (co, kh, kw); wo = (g * Cog * Cig + ci) * KHW
fn wTap(k: u32, wo: u32) -> f32 {
  let kc = min(k, K - 1u);
  return select(0.0, w[wo + kc / KHW * Cig * KHW + kc % KHW], k < K);
}
// dy[n, g*Cog + co, oh, ow] where tap k = (co, kh, kw) of input position (y, x) - padding lands:
// oh * sh = y - kh * dh, ow * sw = x - kw * dw; 0.0 where it lands between strides or outside.
// yo = (n * Cout + g * Cog) * OH * OW
fn dyTap(k: u32, yo: u32, y: i32, x: i32) -> f32 {
  let r = k % KHW;
  let ty = y - i32(r / KW) * dh; let tx = x - i32(r % KW) * dw;
  let oh = u32(ty / sh); let ow = u32(tx / sw);
  let ok = k < K && ty >= 0 && tx >= 0 && ty % sh == 0 && tx % sw == 0 && oh < OH && ow < OW;
  return select(0.0, dy[select(0u, yo + (k / KHW * OH + oh) * OW + ow, ok)], ok);
}`,
    store: /* wgsl */ `
fn store(g: u32, m: u32, n: u32, rows: u32, cols: u32, v: vec4<f32>) {
  if (m >= rows) { return; }
  let c = g * Cig + m;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (n + j < cols) { out[((n + j) / HW * Cin + c) * HW + (n + j) % HW] = v[j]; }
  }
}`,
  }),
  weight: () => ({
    inputs: ["x", "dy"],
    A: {
      fast: "k",
      fixed: (i, rc) => `let yo${i} = (g * Cog + ${rc}) * OHW;`,
      load: (i, k) => `dyAt(${k}, yo${i})`,
    },
    B: {
      fast: "k",
      fixed: (i, rc) =>
        `let c${i} = ${rc}; let xo${i} = (g * Cig + c${i} / KHW) * H * W;
  let th${i} = i32(c${i} % KHW / KW) * dh - ph; let tw${i} = i32(c${i} % KW) * dw - pw;`,
      load: (i, k) => `xTap(${k}, xo${i}, th${i}, tw${i})`,
    },
    helpers: /* wgsl */ `
// dy[n, g*Cog + co, oh, ow] for k = (n, oh, ow); yo = (g * Cog + co) * OH * OW
fn dyAt(k: u32, yo: u32) -> f32 {
  let kc = min(k, K - 1u);
  return select(0.0, dy[yo + kc / OHW * Cout * OHW + kc % OHW], k < K);
}
// x[n, g*Cig + ci, oh*sh + th, ow*sw + tw] for k = (n, oh, ow), where th = kh*dh - ph and
// tw = kw*dw - pw are the column's tap; xo = (g * Cig + ci) * H * W
fn xTap(k: u32, xo: u32, th: i32, tw: i32) -> f32 {
  let p = k % OHW;
  let ih = i32(p / OW) * sh + th; let iw = i32(p % OW) * sw + tw;
  let ok = k < K && u32(ih) < H && u32(iw) < W;
  return select(0.0, x[select(0u, k / OHW * Cin * H * W + xo + u32(ih) * W + u32(iw), ok)], ok);
}`,
    // slice bt = g * S + s writes partial sum s (S = 1: the gradient itself)
    store: /* wgsl */ `
fn store(bt: u32, m: u32, n: u32, rows: u32, cols: u32, v: vec4<f32>) {
  if (m >= rows) { return; }
  let row = (bt % SPLITS * Cout + bt / SPLITS * Cog + m) * cols;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (n + j < cols) { out[row + n + j] = v[j]; }
  }
}`,
  }),
};

/**
 * One pass's kernel. Bindings: the two inputs as tensor/ops/conv.ts passes them (forward x, w;
 * input dy, w; weight x, dy), the epilogue's buffers (forward only), then out.
 */
function conv2dTiledSource(which: ConvPass, c: ConvTiledConfig, dims: ConvDims, e?: Epilogue): string {
  const S = c.splitK ?? 1;
  if (S > 1 && which !== "weight") throw new Error(`conv2d tiled: split-K is for the weight gradient`);
  if (e && which !== "forward") throw new Error(`conv2d tiled: the epilogue is for the forward conv`);
  const [M, N, K] = gemmDims(which, dims), p = PASSES[which](e);
  const BM = 16 * c.tm, BN = 16 * c.tn;
  // chunks of whole slabs, so that no slab straddles two slices
  const chunk = Math.ceil(Math.ceil(K / S) / c.bk) * c.bk;
  const element = (x: "a" | "b", op: Operand, rows: number, last: string) => (i: number) => {
    const ix = slabIndex(i, c.bk, op.fast, rows);
    return `  let ${x}k${i} = ${ix.k}; let ${x}r${i} = ${ix.r}; let ${x}s${i} = ${x}k${i} * ${
      rows + 4
    }u + ${x}r${i};
  ${op.fixed(i, `min(${x === "a" ? "mTile" : "nTile"} + ${x}r${i}, ${last} - 1u)`)}`;
  };
  const elements = (n: number) => [...Array(n).keys()];
  return tiledGemmWGSL(c, {
    name: `conv2d ${which}`,
    decls: `${PARAMS}
@group(0) @binding(1) var<storage, read> ${p.inputs[0]}: array<f32>;
@group(0) @binding(2) var<storage, read> ${p.inputs[1]}: array<f32>;${e ? `\n${epilogueDecls(e, 3)}` : ""}
@group(0) @binding(${3 + epilogueBuffers(e)}) var<storage, read_write> out: array<f32>;
${convConsts(dims)}
const OHW: u32 = ${dims.OH * dims.OW}u; const HW: u32 = ${dims.H * dims.W}u;
const M: u32 = ${M}u; const N: u32 = ${N}u; const K: u32 = ${K}u; const SPLITS: u32 = ${S}u;
${p.helpers}`,
    setup: `  let bt = wid.z; let g = bt / SPLITS;
  let kBegin = bt % SPLITS * ${chunk}u; let kEnd = min(K, kBegin + ${chunk}u);
  let mTile = wid.x * ${BM}u; let nTile = wid.y * ${BN}u;
${elements((BM * c.bk) / 256).map(element("a", p.A, BM, "M")).join("\n")}
${elements((BN * c.bk) / 256).map(element("b", p.B, BN, "N")).join("\n")}`,
    k: ["kBegin", "kEnd"],
    fetchA: (i) => `pa${i} = ${p.A.load(i, `k0 + ak${i}`)};`,
    fetchB: (i) => `pb${i} = ${p.B.load(i, `k0 + bk${i}`)};`,
    storeFn: p.store,
  });
}

export const conv2dTiledWGSL = memoWGSL(conv2dTiledSource);

/** Workgroups: x over M tiles (consecutive ones share B's slab in cache), y over N tiles, z over G * S. */
export function conv2dTiledGrid(
  which: ConvPass,
  c: ConvTiledConfig,
  dims: ConvDims,
): [number, number, number] {
  const [M, N] = gemmDims(which, dims);
  return [Math.ceil(M / (16 * c.tm)), Math.ceil(N / (16 * c.tn)), dims.G * (c.splitK ?? 1)];
}
