// conv2d (stride, padding, dilation, groups, bias) on NCHW tensors: three direct kernels
// (kernels/conv2d.ts) and their CPU twins. The gradient of each is built from the other two.

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
} from "../../kernels/conv2d_rows.ts";
import { gemmGrid, splitSumWGSL } from "../../kernels/gemm.ts";
import { type Launch, runVariant, type Variant } from "../webgpu/variants.ts";
import { empty } from "../create.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { add } from "./elementwise.ts";
import { matmul } from "./matmul.ts";
import { packed, permute, reshape } from "./movement.ts";
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

/** One of the three kernels: forward(x, w), input(dy, w) or weight(x, dy). */
function convKernel(which: Which, a: Tensor, b: Tensor, g: Geometry): Tensor {
  const { N, Cin, H, W, Cout, OH, OW, KH, KW, s, p, d, G } = g;
  const Cig = Cin / G, Cog = Cout / G;
  const shape = which === "forward"
    ? [N, Cout, OH, OW]
    : which === "input"
    ? [N, Cin, H, W]
    : [Cout, Cig, KH, KW];
  const [ac, bc] = [packed(a), packed(b)];
  const out = empty(shape, { device: a.device, dtype: a.dtype });
  if (a.device === "cpu") {
    const A = ac.storage.host!, B = bc.storage.host!, O = out.storage.host!;
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
  } else {
    const [M, Nn, K] = gemmDims(which, g);
    const io = { reads: [ac.storage.binding, bc.storage.binding], writes: [out.storage.binding] };
    const partials: Tensor[] = [];
    const rows = rowsGeometry(which, g);
    let wt: Tensor | null = null; // the weights as the rows kernel reads them, made on first use
    // split-K partial sums must fit comfortably (weights of deep layers are millions of floats)
    const splitsOf = (v: Variant) => v.gemm?.splitK ?? v.wrows?.splits ?? 1;
    const fits = (v: Variant) =>
      (splitsOf(v) === 1 || splitsOf(v) * out.size <= 1 << 24) &&
      (v.rows ? rows !== null : !v.wrows || weightRowsFit(g));
    runVariant(which === "weight" ? "conv2d_weight" : "conv2d", { M, N: Nn, K }, fits, (v): Launch => {
      const name = `conv2d_${which}_${v.name}`, splits = splitsOf(v);
      if (v.rows) {
        wt ??= rowsWeights(which, bc, g);
        return {
          name,
          code: conv2dRowsWGSL(v.rows, rows!, which === "input"),
          params: [G],
          reads: [ac.storage.binding, wt.storage.binding],
          writes: io.writes,
          workgroups: conv2dRowsGrid(v.rows, rows!),
        };
      }
      if (!v.gemm && !v.wrows) {
        const params = [out.size, N, Cin, H, W, Cout, OH, OW, KH, KW, ...s, ...p, ...d, G];
        return { name, code: DIRECT[which](), params, ...io, threads: out.size };
      }
      const kernel = v.wrows
        ? {
          name,
          code: conv2dRowsWeightGradWGSL(v.wrows, g),
          params: [G],
          workgroups: conv2dRowsWeightGradGrid(v.wrows, g),
        }
        : {
          name,
          code: GEMM[which](v.gemm!, g),
          params: [G, M, Nn, K],
          workgroups: gemmGrid(G, M, Nn, v.gemm!),
        };
      if (splits === 1) return { ...kernel, ...io };
      const part = empty([splits, out.size], { device: a.device, dtype: a.dtype });
      partials.push(part);
      return [
        { ...kernel, reads: io.reads, writes: [part.storage.binding] },
        {
          name: "split_sum",
          code: splitSumWGSL(),
          params: [out.size, splits],
          reads: [part.storage.binding],
          writes: io.writes,
          threads: out.size,
        },
      ];
    });
    for (const t of [...partials, ...(wt ? [wt] : [])]) t.dispose(); // (buffers are reused only by later commands)
  }
  if (ac !== a) ac.dispose();
  if (bc !== b) bc.dispose();
  return out;
}

/**
 * The geometry the rows kernel (kernels/conv2d_rows.ts) runs, or null where it does not apply.
 * Forward: the conv itself. Input gradient of a stride-1 conv: a stride-1 conv of dy (Cout
 * channels, OH x OW) with the taps flipped, padded by d * (K - 1) - p, giving Cin channels at H x W.
 */
function rowsGeometry(which: Which, g: Geometry): Geometry | null {
  const { Cin, Cout, G, KH, KW, p, d } = g;
  if (which === "forward") return (Cout / G) % 4 === 0 ? g : null;
  const pt: [number, number] = [d[0] * (KH - 1) - p[0], d[1] * (KW - 1) - p[1]];
  if (which === "weight" || g.s.join() !== "1,1" || (Cin / G) % 4 || pt[0] < 0 || pt[1] < 0) return null;
  return { ...g, Cin: Cout, H: g.OH, W: g.OW, Cout: Cin, OH: g.H, OW: g.W, p: pt };
}

/** The weight-gradient row kernel reads dy rows as vec4s and keeps every tap in registers. */
const weightRowsFit = (g: Geometry) => g.OW % 4 === 0 && g.KH * g.KW <= 9;

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

/** A 1x1 convolution is a matmul, W [Cout, Cin] @ x [N, Cin, H * W] batched over N, and autograd's. */
function pointwise(x: Tensor, weight: Tensor, g: Geometry): Tensor {
  const rows = matmul(reshape(weight, [g.Cout, g.Cin]), reshape(x, [g.N, g.Cin, g.H * g.W]));
  return reshape(rows, [g.N, g.Cout, g.H, g.W]);
}

/** 2-D convolution (cross-correlation, as PyTorch): x [N, Cin, H, W], weight [Cout, Cin/groups, KH, KW]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const g = geometry(x, weight, opts);
  const y = isPointwise(g)
    ? pointwise(x, weight, g)
    // Each gradient is a full GEMM: skip the ones nobody asked for (the image, frozen weights).
    : fromOp("conv2d", convKernel("forward", x, weight, g), [x, weight], (dy) => [
      x.requiresGrad ? convKernel("input", dy, weight, g) : null,
      weight.requiresGrad ? convKernel("weight", x, dy, g) : null,
    ]);
  return bias ? add(y, reshape(bias, [1, g.Cout, 1, 1])) : y;
}
