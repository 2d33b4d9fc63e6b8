// conv2d (stride, padding, dilation, groups, bias) on NCHW tensors: three direct kernels
// (kernels/conv2d.ts) and their CPU twins. The gradient of each is built from the other two.
// conv2dFused is the inference form: the forward conv with a per-channel scale and shift, a
// residual and ReLU applied as it stores its output (kernels/epilogue.ts), for conv + batchnorm
// on running statistics (+ add) (+ relu) in one kernel.

import {
  conv2dGemmWGSL,
  conv2dInputGradGemmWGSL,
  conv2dInputGradWGSL,
  conv2dWeightGradGemmWGSL,
  conv2dWeightGradWGSL,
  conv2dWGSL,
  type ConvDims,
} from "../../kernels/conv2d.ts";
import {
  conv2dRowsGrid,
  conv2dRowsWeightGradGrid,
  conv2dRowsWeightGradWGSL,
  conv2dRowsWGSL,
  type RowsConfig,
  rowsTextureBlock,
  zeroInsertWGSL,
} from "../../kernels/conv2d_rows.ts";
import { conv2dTiledGrid, conv2dTiledWGSL, type ConvTiledConfig } from "../../kernels/conv2d_tiled.ts";
import { convEpilogueWGSL, type Epilogue } from "../../kernels/epilogue.ts";
import { gemmGrid } from "../../kernels/gemm.ts";
import { type Launch, runVariant, type Variant } from "../webgpu/variants.ts";
import type { Dispatch } from "../webgpu/runtime.ts";
import { empty, zeros } from "../create.ts";
import { gpu, type HostArray } from "../storage.ts";
import { fromOp, isGradEnabled, noGrad, Tensor } from "../tensor.ts";
import { add, copyInto, mul, relu as reluOp } from "./elementwise.ts";
import { matmul, splitK } from "./matmul.ts";
import { concat, dense, denseBinding, denseHost, packed, permute, reshape, slice } from "./movement.ts";
import { blocksPerBand, fold, packTexture, textureFits, type TextureOperand } from "./texture.ts";
import { register } from "./registry.ts";

register("conv2d");

export type Pair = number | [number, number];
export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** A size given once for both axes, or per axis. */
export const pair = (
  p: Pair | undefined,
  d: number,
): [number, number] => (p === undefined ? [d, d] : typeof p === "number" ? [p, p] : p);

/** The conv's sizes; the GEMM kernels compile them in as constants. */
type Geometry = ConvDims;

function geometry(x: Tensor, w: Tensor, o: Conv2dOptions): Geometry {
  if (x.ndim !== 4 || w.ndim !== 4) {
    throw new Error(`conv2d: input [${x.shape}] and weight [${w.shape}] must be 4-d`);
  }
  if (x.device !== w.device) throw new Error(`conv2d: input on ${x.device}, weight on ${w.device}`);
  const [N, Cin, H, W] = x.shape, [Cout, Cig, KH, KW] = w.shape, G = o.groups ?? 1;
  const s = pair(o.stride, 1), p = pair(o.padding, 0), d = pair(o.dilation, 1);
  if (Cin % G || Cout % G || Cig * G !== Cin) {
    throw new Error(`conv2d: ${Cin} input channels, weight [${w.shape}] and groups ${G} do not agree`);
  }
  const OH = Math.floor((H + 2 * p[0] - d[0] * (KH - 1) - 1) / s[0]) + 1;
  const OW = Math.floor((W + 2 * p[1] - d[1] * (KW - 1) - 1) / s[1]) + 1;
  if (OH <= 0 || OW <= 0) throw new Error(`conv2d: input [${x.shape}] is smaller than kernel [${w.shape}]`);
  return { N, Cin, H, W, Cout, OH, OW, KH, KW, s, p, d, G };
}

type Which = "forward" | "input" | "weight";
const DIRECT = { forward: conv2dWGSL, input: conv2dInputGradWGSL, weight: conv2dWeightGradWGSL };
const GEMM = { forward: conv2dGemmWGSL, input: conv2dInputGradGemmWGSL, weight: conv2dWeightGradGemmWGSL };

/** The implicit GEMM's [M, N, K] for each product (kernels/conv2d.ts). */
function gemmDims(
  which: Which,
  { N, Cin, H, W, Cout, OH, OW, KH, KW, G }: Geometry,
): [number, number, number] {
  const [Cig, Cog] = [Cin / G, Cout / G];
  if (which === "forward") return [Cog, N * OH * OW, Cig * KH * KW];
  if (which === "input") return [Cig, N * H * W, Cog * KH * KW];
  return [Cog, Cig * KH * KW, N * OH * OW];
}

/** An epilogue and its buffers (packed: scale, shift, residual, those present, in that order). */
interface Fused {
  e: Epilogue;
  bufs: Tensor[];
}

/** One of the three kernels: forward(x, w), input(dy, w) or weight(x, dy); the forward may fuse an epilogue. */
function convKernel(which: Which, a: Tensor, b: Tensor, g: Geometry, fused?: Fused): Tensor {
  const { N, Cin, H, W, Cout, OH, OW, KH, KW, s, p, d, G } = g;
  const Cig = Cin / G, Cog = Cout / G;
  const shape = which === "forward"
    ? [N, Cout, OH, OW]
    : which === "input"
    ? [N, Cin, H, W]
    : [Cout, Cig, KH, KW];
  // b is the weight in the forward and input passes: read in place where an optimizer keeps it
  const [ac, bc] = [packed(a), dense(b)];
  const out = empty(shape, { device: a.device, dtype: a.dtype });
  if (a.device === "cpu") {
    const A = ac.storage.host!, B = denseHost(bc), O = out.storage.host!;
    const xi = (n: number, c: number, h: number, w: number) => ((n * Cin + c) * H + h) * W + w;
    const yi = (n: number, c: number, h: number, w: number) => ((n * Cout + c) * OH + h) * OW + w;
    const wi = (co: number, ci: number, kh: number, kw: number) => ((co * Cig + ci) * KH + kh) * KW + kw;
    // One loop nest, three accumulation targets: each tap pairs an x, a w and a y element.
    for (let n = 0; n < N; n++) {
      for (let co = 0; co < Cout; co++) {
        const grp = Math.floor(co / Cog);
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++) {
            for (let ci = 0; ci < Cig; ci++) {
              for (let kh = 0; kh < KH; kh++) {
                const ih = oh * s[0] - p[0] + kh * d[0];
                if (ih < 0 || ih >= H) continue;
                for (let kw = 0; kw < KW; kw++) {
                  const iw = ow * s[1] - p[1] + kw * d[1];
                  if (iw < 0 || iw >= W) continue;
                  const x = xi(n, grp * Cig + ci, ih, iw), y = yi(n, co, oh, ow), w = wi(co, ci, kh, kw);
                  if (which === "forward") O[y] += A[x] * B[w];
                  else if (which === "input") O[x] += A[y] * B[w];
                  else O[w] += A[x] * B[y];
                }
              }
            }
          }
        }
      }
    }
    if (fused) epilogueCPU(O, O, fused, Cout, OH * OW);
  } else {
    const [M, Nn, K] = gemmDims(which, g);
    // the epilogue's buffers bind after the two inputs (kernels/epilogue.ts)
    const extra = fused?.bufs.map((t) => t.storage.binding) ?? [];
    const io = { reads: [ac.storage.binding, denseBinding(bc), ...extra], writes: [out.storage.binding] };
    const partials: Tensor[] = [], textures: GPUTexture[] = [];
    const rows = rowsGeometry(which, g);
    // the planes form's input, copied where its rows allow: ac itself (not a strided conv's input
    // gradient, whose run reads dy with zeros inserted)
    const direct = which === "forward" || g.s.join() === "1,1";
    const planes = rows && direct && rows.W % 4 === 0 ? fold(inputPlanes(rows, ac.offset), ac) : null;
    // the weights as the rows kernel reads them, made on first use, and the launches that make them:
    // each call pays for those, so they run (and are timed) with each storage candidate
    let wt: [Tensor, Dispatch[]] | null = null;
    let dyz: Tensor | null = null; // a strided conv's dy with zeros inserted, for the rows kernel
    // split-K partial sums must fit comfortably (weights of deep layers are millions of floats)
    const splitsOf = (v: Variant) => v.gemm?.splitK ?? v.wrows?.splits ?? v.convTiled?.splitK ?? 1;
    // A fused forward never takes a split-K variant: the epilogue would have to move into the
    // split-sum kernel, after the last partial. (No forward variant splits K today; the forward
    // GEMM's store has no partial-sum offset.)
    const fits = (v: Variant) =>
      (splitsOf(v) === 1 || (!fused && splitsOf(v) * out.size <= 1 << 24)) &&
      (v.rows
        ? rows !== null && (!v.rows.texture || textureRowsFit(v.rows, rows, which, g)) &&
          (!v.rows.planes || (planes !== null && textureFits(planes)))
        : !v.wrows || (weightRowsFit(g) && (!v.wrows.texture || weightTexturesFit(g)))) &&
      (!v.convTiled || tiledFit(which, v.convTiled, g));
    // Fused launches share the plain forward's variants and tuning key: the epilogue adds the same
    // per-output work to each, so it does not change which is fastest. (A winner stored with the
    // plain kernels' hash is re-timed once per process for the fused ones, and the other way round.)
    // The key's form names the pass and the geometry, which the kernels compile in.
    const form = `${which} ${Cin}x${H}x${W}>${Cout} k${KH}x${KW} s${s} p${p} d${d} g${G}`;
    runVariant(which === "weight" ? "conv2d_weight" : "conv2d", { M, N: Nn, K, form }, fits, (v): Launch => {
      const name = `conv2d_${which}${fused ? "_fused" : ""}_${v.name}`, splits = splitsOf(v);
      if (v.rows) {
        // a strided conv's input gradient runs on dy with zeros inserted (see rowsGeometry)
        const launches: Dispatch[] = [];
        let src = ac;
        if (which === "input" && g.s.join() !== "1,1") {
          dyz ??= empty([N, Cout, rows!.H, rows!.W], { device: a.device, dtype: a.dtype });
          launches.push({
            name: "conv2d_zero_insert",
            code: zeroInsertWGSL(g, rows!.H, rows!.W),
            params: [dyz.size],
            reads: [ac.storage.binding],
            writes: [dyz.storage.binding],
            threads: dyz.size,
          });
          src = dyz;
        }
        const conv = { name, params: [G], writes: io.writes, workgroups: conv2dRowsGrid(v.rows, rows!) };
        if (v.rows.texture) {
          const [padded, w] = rowsTextures(which, v.rows, rows!, g, [src.offset, bc.offset]);
          const x = v.rows.planes ? planes! : padded, flip = which === "input";
          return [
            ...launches,
            packTexture(src, x, textures),
            packTexture(bc, w, textures),
            {
              ...conv,
              code: conv2dRowsWGSL(v.rows, rows!, { flip, epilogue: fused?.e, XP: x.P, XF: x.F }),
              reads: [...textures.slice(-2).map((texture) => ({ texture })), ...extra],
            },
          ];
        }
        wt ??= gpu().recording(() => rowsWeights(which, bc, g));
        return [...launches, ...wt[1], {
          ...conv,
          code: conv2dRowsWGSL(v.rows, rows!, { flip: which === "input", epilogue: fused?.e }),
          reads: [src.storage.binding, wt[0].storage.binding, ...extra],
        }];
      }
      if (!v.gemm && !v.wrows && !v.convTiled) {
        const params = [out.size, N, Cin, H, W, Cout, OH, OW, KH, KW, ...s, ...p, ...d, G];
        const code = which === "forward" ? conv2dWGSL(fused?.e) : DIRECT[which]();
        return { name, code, params, ...io, threads: out.size };
      }
      if (v.wrows?.texture) {
        const [x, dy] = weightRowsTextures(g, [ac.offset, bc.offset]);
        const packs = [packTexture(ac, x, textures), packTexture(bc, dy, textures)];
        const reads = textures.slice(-2).map((texture) => ({ texture }));
        const kernel = {
          name,
          code: conv2dRowsWeightGradWGSL(v.wrows, g, { XP: x.P, DP: dy.P }),
          params: [G],
          workgroups: conv2dRowsWeightGradGrid(v.wrows, g),
        };
        return [
          ...packs,
          ...(splits === 1
            ? [{ ...kernel, reads, writes: io.writes }]
            : splitK(kernel, reads, out, splits, partials)),
        ];
      }
      const kernel = v.wrows
        ? {
          name,
          code: conv2dRowsWeightGradWGSL(v.wrows, g),
          params: [G],
          workgroups: conv2dRowsWeightGradGrid(v.wrows, g),
        }
        : v.convTiled
        ? {
          name,
          code: conv2dTiledWGSL(which, v.convTiled, g, fused?.e),
          params: [G],
          workgroups: conv2dTiledGrid(which, v.convTiled, g),
        }
        : {
          name,
          code: which === "forward" ? conv2dGemmWGSL(v.gemm!, g, fused?.e) : GEMM[which](v.gemm!, g),
          params: [G, M, Nn, K],
          workgroups: gemmGrid(G, M, Nn, v.gemm!),
        };
      return splits === 1 ? { ...kernel, ...io } : splitK(kernel, io.reads, out, splits, partials);
    });
    // (buffers and textures are reused only by later commands)
    for (const t of [...partials, wt?.[0], dyz]) t?.dispose();
    for (const t of textures) gpu().textures.release(t);
  }
  if (ac !== a) ac.dispose();
  if (bc !== b) bc.dispose();
  return out;
}

/**
 * The geometry the rows kernel (kernels/conv2d_rows.ts) runs, or null where it does not apply.
 * Forward: the conv itself. Input gradient: a stride-1 conv of dy (Cout channels) with the taps
 * flipped, padded by pt = d * (K - 1) - p, giving Cin channels at H x W. A strided conv's dy first
 * gets s - 1 zeros between its rows and columns (kernels/conv2d_rows.ts, zeroInsertWGSL), to
 * H + 2p - d * (K - 1) rows: the length whose stride-1 conv is H long again.
 */
function rowsGeometry(which: Which, g: Geometry): Geometry | null {
  const { Cin, Cout, G, H, W, KH, KW, p, d } = g;
  if (which === "forward") return (Cout / G) % 4 === 0 ? g : null;
  const pt: [number, number] = [d[0] * (KH - 1) - p[0], d[1] * (KW - 1) - p[1]];
  if (which === "weight" || (Cin / G) % 4 || pt[0] < 0 || pt[1] < 0) return null;
  const [Hd, Wd] = g.s.join() === "1,1" ? [g.OH, g.OW] : [H - pt[0] + p[0], W - pt[1] + p[1]];
  return { ...g, Cin: Cout, H: Hd, W: Wd, Cout: Cin, OH: H, OW: W, p: pt, s: [1, 1] };
}

/**
 * The rows kernel's texture form (kernels/conv2d_rows.ts) as packed by kernels/texture_pack.ts: the
 * run's input [N, C, H, W] (contiguous from element srcAt) with its padding, each plane a block of
 * the kernel's texel rows; and the weights w [G * Cog, Cig, KH, KW] (contiguous from wAt) as rows
 * (g, c, kh, kw) of the run's output channels: the forward's (g, ci, kh, kw) of Cog, the input
 * gradient's (g, co, kh, kw) of Cig.
 */
function rowsTextures(
  which: Which,
  cfg: RowsConfig,
  run: Geometry,
  { Cin, Cout, G, KH, KW }: Geometry,
  [srcAt, wAt] = [0, 0],
): [TextureOperand, TextureOperand] {
  const x = paddedPlanes(cfg, run, srcAt);
  const [Cog, Cig, taps] = [Cout / G, Cin / G, KH * KW], sco = Cig * taps;
  const [rowsOf, cols, scol] = which === "forward" ? [Cig, Cog, sco] : [Cog, Cig, taps];
  const weights: TextureOperand = {
    batch: [G, rowsOf],
    view: { offset: wAt, strides: [Cog * sco, which === "forward" ? taps : sco] },
    rows: taps,
    cols,
    strides: [1, scol],
    R: taps,
    W: cols / 4,
  };
  return [x, weights];
}

/** `count` planes of H x W (contiguous from `at`), each a block of H rows of W / 4 texels. */
const planesOf = (count: number, H: number, W: number, at: number): TextureOperand => ({
  batch: [count],
  view: { offset: at, strides: [H * W] },
  rows: H,
  cols: W,
  strides: [W, 1],
  R: H,
  W: W / 4,
});

/** A run's input [N, C, H, W] (contiguous from `at`) as the rows kernels' texture form pads it. */
function paddedPlanes(cfg: RowsConfig, run: Geometry, at: number): TextureOperand {
  const { XR, XW } = rowsTextureBlock(cfg, run);
  return { ...planesOf(run.N * run.Cin, run.H, run.W, at), R: XR, W: XW, pad: run.p, P: blocksPerBand(XW) };
}

/** A run's input as its planes, unpadded (the planes form: W % 4 == 0; folded by the caller). */
const inputPlanes = (run: Geometry, at: number) => planesOf(run.N * run.Cin, run.H, run.W, at);

/** The texture form takes stride-1 undilated runs whose segments start on a texel, and textures that fit. */
function textureRowsFit(cfg: RowsConfig, run: Geometry, which: Which, g: Geometry): boolean {
  if (run.s.join() !== "1,1" || run.d.join() !== "1,1" || cfg.tn % 4) return false;
  return rowsTextures(which, cfg, run, g).every(textureFits);
}

/** The weight-gradient row kernel reads dy rows as vec4s and keeps every tap in registers. */
const weightRowsFit = (g: Geometry) => g.OW % 4 === 0 && g.KH * g.KW <= 9;

/**
 * The weight-gradient row kernel's texture form (kernels/conv2d_rows.ts) as packed by
 * kernels/texture_pack.ts: x [N, Cin, H, W] (contiguous from xAt) padded as the forward's texture
 * form with 4 outputs to a chunk, and dy [N, Cout, OH, OW] (contiguous from dyAt) as blocks of OH
 * rows of OW / 4 texels.
 */
function weightRowsTextures(g: Geometry, [xAt, dyAt] = [0, 0]): [TextureOperand, TextureOperand] {
  const dy = { ...planesOf(g.N * g.Cout, g.OH, g.OW, dyAt), P: blocksPerBand(g.OW / 4) };
  return [paddedPlanes({ tm: 4, tn: 4 }, g, xAt), dy];
}

const weightTexturesFit = (g: Geometry) =>
  g.s.join() === "1,1" && g.d.join() === "1,1" && weightRowsTextures(g).every(textureFits);

/**
 * The workgroup-tiled kernels (kernels/conv2d_tiled.ts) take any geometry, groups and fused
 * epilogue included; only their grid can exceed the device's limit (tiles of N * OH * OW in y),
 * and split-K is for the weight gradient alone.
 */
function tiledFit(which: Which, c: ConvTiledConfig, g: Geometry): boolean {
  const limit = gpu().device.limits.maxComputeWorkgroupsPerDimension;
  return (which === "weight" || !c.splitK) && conv2dTiledGrid(which, c, g).every((n) => n <= limit);
}

/**
 * w [G * Cog, Cig, KH, KW] as wt [G, Cin', KH, KW, Cout'] of the conv the rows kernel runs: the
 * forward reads [G, Cig, KH, KW, Cog], the input gradient [G, Cog, KH, KW, Cig] (it flips the taps itself).
 */
function rowsWeights(which: Which, w: Tensor, { Cin, Cout, G, KH, KW }: Geometry): Tensor {
  return noGrad(() => {
    const grouped = reshape(w, [G, Cout / G, Cin / G, KH, KW]);
    const order = permute(grouped, which === "forward" ? [0, 2, 3, 4, 1] : [0, 1, 3, 4, 2]);
    const wt = packed(order);
    for (const view of [grouped, order]) if (view !== wt) view.dispose();
    return wt;
  });
}

const isPointwise = (g: Geometry) =>
  g.KH === 1 && g.KW === 1 && g.G === 1 && g.s.join() === "1,1" && g.p.join() === "0,0";

/**
 * A 1x1 convolution is a matmul, W [Cout, Cin] @ x [N, Cin, H * W] batched over N, and autograd's.
 * Where H * W is not a multiple of 4 (ResNet's 7 x 7 stage) no vec4 or texture kernel takes those
 * columns, so the product runs transposed, x^T [N * H * W, Cin] @ W^T with Cout columns, and is
 * permuted back: on llvmpipe, ResNet's 7 x 7 shapes at batch 1 and 2 ran 1.2-2.6x faster forward and
 * 1.7-3.9x forward and backward, the copies included (bench/RESULTS.md, session 18).
 */
function pointwise(x: Tensor, weight: Tensor, g: Geometry): Tensor {
  const w = reshape(weight, [g.Cout, g.Cin]), xs = reshape(x, [g.N, g.Cin, g.H * g.W]);
  const y = (g.H * g.W) % 4 && g.Cout % 4 === 0
    ? permute(matmul(permute(xs, [0, 2, 1]), permute(w, [1, 0])), [0, 2, 1])
    : matmul(w, xs);
  return reshape(y, [g.N, g.Cout, g.H, g.W]);
}

/**
 * The epilogue's CPU twin, from `src` into `dst` (the same array to work in place): NCHW values
 * with C channels of HW positions, computed as the unfused ops compute it.
 */
function epilogueCPU(src: ArrayLike<number>, dst: HostArray, { e, bufs }: Fused, C: number, HW: number) {
  const host = bufs.map((t) => t.storage.host!); // in the order scale, shift, residual
  const S = e.scale ? host.shift()! : null, H = e.shift ? host.shift()! : null;
  const R = e.residual ? host.shift()! : null;
  for (let i = 0; i < dst.length; i++) {
    const c = Math.floor(i / HW) % C;
    let v = src[i];
    if (S) v *= S[c];
    if (H) v += H[c];
    if (R) v += R[i];
    dst[i] = e.relu ? Math.max(v, 0) : v;
  }
}

/**
 * The epilogue as its own pass over y [N, C, H, W], for 1x1 convs done by matmul: one elementwise
 * kernel after the matmul (kernels/epilogue.ts) rather than an epilogue in each matmul variant.
 */
function epiloguePass(y: Tensor, f: Fused): Tensor {
  const [, C, H, W] = y.shape, yc = packed(y);
  const out = empty(y.shape, { device: y.device, dtype: y.dtype });
  if (y.device === "cpu") epilogueCPU(yc.storage.host!, out.storage.host!, f, C, H * W);
  else {
    gpu().run({
      name: "conv2d_epilogue",
      code: convEpilogueWGSL(f.e),
      params: [out.size, C, H * W],
      reads: [yc, ...f.bufs].map((t) => t.storage.binding),
      writes: [out.storage.binding],
      threads: out.size,
    });
  }
  if (yc !== y) yc.dispose();
  return out;
}

/** 2-D convolution (cross-correlation, as PyTorch): x [N, Cin, H, W], weight [Cout, Cin/groups, KH, KW]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const g = geometry(x, weight, opts);
  const y = isPointwise(g)
    ? pointwise(x, weight, g)
    // Each gradient is a full GEMM: skip the ones nobody asked for (the image, frozen weights).
    : fromOp("conv2d", convKernel("forward", x, weight, g), [x, weight], (dy) => [
      x.requiresGrad ? inputGrad(dy, weight, g) : null,
      weight.requiresGrad ? convKernel("weight", x, dy, g) : null,
    ]);
  return bias ? add(y, reshape(bias, [1, g.Cout, 1, 1])) : y;
}

/**
 * dx of a conv. A strided one (on the GPU; the CPU keeps the direct loops as the reference) goes
 * phase by phase: the inputs at rows r + s * j receive only the taps kh = r + p (mod s), at dy rows
 * j + c - t for tap kh0 + s * t, so each phase (r, r') is a stride-1 conv of dy with those taps,
 * flipped (a conv correlates), written into every s-th row and column of dx. The rows kernel's
 * alternative, a conv over dy with s - 1 zeros inserted between rows and columns, does s^2 times
 * the multiply-adds (measured for the encoder's 3 x 3 stride 2, 32 -> 64 channels at 16 px: its
 * input gradient took 82 ms against the forward's 27).
 */
function inputGrad(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const { N, Cin, H, W, OH, OW, KH, KW, s, p, d, G } = g;
  if (dy.device === "cpu" || s.join() === "1,1" || d.join() !== "1,1" || G !== 1) {
    return convKernel("input", dy, w, g);
  }
  const dx = zeros([N, Cin, H, W], { device: dy.device, dtype: dy.dtype });
  const axis = (r: number, K: number, L: number, st: number, pd: number, O: number) => {
    const k0 = (r + pd) % st, taps: number[] = [];
    for (let k = k0; k < K; k += st) taps.unshift(k); // flipped
    const c = (r + pd - k0) / st, T = taps.length;
    // the phase's dx rows, as far as the padded conv's O + T - 1 output rows reach
    return { taps, pad: T - 1, c, n: T ? Math.max(0, Math.min(Math.ceil((L - r) / st), O + T - 1 - c)) : 0 };
  };
  for (let rh = 0; rh < s[0]; rh++) {
    for (let rw = 0; rw < s[1]; rw++) {
      const [ah, aw] = [axis(rh, KH, H, s[0], p[0], OH), axis(rw, KW, W, s[1], p[1], OW)];
      if (!ah.n || !aw.n) continue;
      const rows = concat(ah.taps.map((k) => slice(w, 2, k, k + 1)), 2);
      const taps = concat(aw.taps.map((k) => slice(rows, 3, k, k + 1)), 3); // [Cout, Cin, Th, Tw]
      const y = conv2d(dy, permute(taps, [1, 0, 2, 3]), null, { padding: [ah.pad, aw.pad] });
      const box = [N, Cin, ah.n, aw.n];
      const src = y.view(box, y.strides, y.offset + ah.c * y.strides[2] + aw.c * y.strides[3]);
      copyInto(dx.view(box, [Cin * H * W, H * W, s[0] * W, s[1]], dx.offset + rh * W + rw), src);
    }
  }
  return dx;
}

/** What conv2dFused applies to the conv's output; every part is optional. */
export interface ConvEpilogue {
  /** [Cout], multiplies each channel (batchnorm: gamma / sqrt(var + eps)) */
  scale?: Tensor | null;
  /** [Cout], added to each channel (a conv bias; batchnorm: beta - mean * scale) */
  shift?: Tensor | null;
  /** [N, Cout, OH, OW], added before the activation (a residual block's shortcut) */
  residual?: Tensor | null;
  relu?: boolean;
}

/**
 * y = act(conv2d(x, weight)[n, c] * scale[c] + shift[c] + residual[n, c]), written once: the
 * epilogue runs inside the conv's forward kernel, whichever variant the tuner picks (1x1 stride-1
 * convs: the matmul, then one epilogue pass). For inference. Where autograd would record it (grad
 * enabled and an input requires grad) it runs the unfused ops instead, which give the same values
 * and the gradients, so it is safe anywhere rather than an error to call in training code. (So it
 * is not a registered op: it never records itself; tests/conv_epilogue_test.ts checks it.)
 */
export function conv2dFused(
  x: Tensor,
  weight: Tensor,
  { scale = null, shift = null, residual = null, relu = false }: ConvEpilogue = {},
  opts: Conv2dOptions = {},
): Tensor {
  const g = geometry(x, weight, opts), C = g.Cout;
  const expect: [string, Tensor | null, number[]][] = [
    ["scale", scale, [C]],
    ["shift", shift, [C]],
    ["residual", residual, [g.N, C, g.OH, g.OW]],
  ];
  for (const [what, t, shape] of expect) {
    if (t && (t.shape.join() !== shape.join() || t.device !== x.device || t.dtype !== x.dtype)) {
      throw new Error(
        `conv2dFused: ${what} is [${t.shape}] ${t.dtype} on ${t.device}, expected [${shape}] ${x.dtype} on ${x.device}`,
      );
    }
  }
  if (isGradEnabled() && [x, weight, scale, shift, residual].some((t) => t?.requiresGrad)) {
    const channels = (t: Tensor) => reshape(t, [1, C, 1, 1]);
    let y = conv2d(x, weight, null, opts);
    if (scale) y = mul(y, channels(scale));
    if (shift) y = add(y, channels(shift));
    if (residual) y = add(y, residual);
    return relu ? reluOp(y) : y;
  }
  const given = [scale, shift, residual].filter((t): t is Tensor => t !== null);
  if (given.length === 0 && !relu) return conv2d(x, weight, null, opts);
  const bufs = given.map(packed);
  const fused = { e: { scale: !!scale, shift: !!shift, residual: !!residual, relu }, bufs };
  let y: Tensor;
  if (isPointwise(g)) {
    const product = pointwise(x, weight, g);
    y = epiloguePass(product, fused);
    product.dispose();
  } else y = convKernel("forward", x, weight, g, fused);
  bufs.forEach((b, i) => b !== given[i] && b.dispose());
  return y;
}
