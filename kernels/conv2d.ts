// conv2d over NCHW input and [Cout, Cin/groups, KH, KW] weights, in three direct kernels.
// Each thread owns one element of what it writes, so no atomics are needed:
//
//   forward       y[n, co, oh, ow]   = sum_{ci, kh, kw} x[n, g*Cig + ci, oh*s - p + kh*d, ...] * w[co, ci, kh, kw]
//   input grad    dx[n, c, ih, iw]   = sum over the (co, kh, kw) whose tap lands on (ih, iw)
//   weight grad   dw[co, ci, kh, kw] = sum_{n, oh, ow} dy[n, co, oh, ow] * x[n, g*Cig + ci, ih, iw]
//
// params: [total, N, Cin, H, W, Cout, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, groups]
// Tiling: none; these direct kernels are the reference variants. The implicit-GEMM variants below
// are the fast ones.
// The forward kernels (this direct one and the implicit GEMM) take an optional epilogue
// (kernels/epilogue.ts): per-channel scale and shift, a residual and ReLU applied at the store, so
// an inference conv + batchnorm (+ add) (+ relu) writes y once. Its buffers bind between the
// inputs and `out`; without one the code is what it was.

import { MAIN, memoWGSL, PARAMS } from "./common.ts";
import { type Epilogue, epilogueBuffers, epilogueDecls, epilogueExpr } from "./epilogue.ts";
import { type GemmConfig, gemmWGSL } from "./gemm.ts";

/** Bindings: a, b, then the epilogue's buffers, then out. */
const io = (e?: Epilogue) =>
  [
    "",
    "@group(0) @binding(1) var<storage, read> a: array<f32>;",
    "@group(0) @binding(2) var<storage, read> b: array<f32>;",
    ...(e ? [epilogueDecls(e, 3)] : []),
    `@group(0) @binding(${3 + epilogueBuffers(e)}) var<storage, read_write> out: array<f32>;`,
  ].join("\n");

const head = (e?: Epilogue) => /* wgsl */ `
${PARAMS}${io(e)}
${MAIN}
  if (i >= param(0)) { return; }
  let N = i32(param(1)); let Cin = i32(param(2)); let H = i32(param(3)); let W = i32(param(4));
  let Cout = i32(param(5)); let OH = i32(param(6)); let OW = i32(param(7));
  let KH = i32(param(8)); let KW = i32(param(9));
  let sh = i32(param(10)); let sw = i32(param(11)); let ph = i32(param(12)); let pw = i32(param(13));
  let dh = i32(param(14)); let dw = i32(param(15)); let G = i32(param(16));
  let Cig = Cin / G; let Cog = Cout / G;
  let t = i32(i);`;

/** a = x [N, Cin, H, W], b = w [Cout, Cig, KH, KW], out = y [N, Cout, OH, OW] (epilogue applied) */
export const conv2dWGSL = memoWGSL((e?: Epilogue) =>
  /* wgsl */ `${head(e)}
  let ow = t % OW; let oh = (t / OW) % OH; let co = (t / (OW * OH)) % Cout; let n = t / (OW * OH * Cout);
  let g = co / Cog;
  var acc = 0.0;
  for (var ci = 0; ci < Cig; ci++) {
    for (var kh = 0; kh < KH; kh++) {
      let ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) { continue; }
      for (var kw = 0; kw < KW; kw++) {
        let iw = ow * sw - pw + kw * dw;
        if (iw < 0 || iw >= W) { continue; }
        acc += a[((n * Cin + g * Cig + ci) * H + ih) * W + iw] * b[((co * Cig + ci) * KH + kh) * KW + kw];
      }
    }
  }
  out[i] = ${epilogueExpr(e, "acc", { s: "scale[co]", h: "shift[co]", r: "res[i]" })};
}`
);

/** a = dy [N, Cout, OH, OW], b = w [Cout, Cig, KH, KW], out = dx [N, Cin, H, W] */
export const conv2dInputGradWGSL = memoWGSL(() =>
  /* wgsl */ `${head()}
  let iw = t % W; let ih = (t / W) % H; let c = (t / (W * H)) % Cin; let n = t / (W * H * Cin);
  let g = c / Cig; let ci = c % Cig;
  var acc = 0.0;
  for (var kh = 0; kh < KH; kh++) {
    let y = ih + ph - kh * dh; // = oh * sh when this tap reads row ih
    if (y < 0 || y % sh != 0 || y / sh >= OH) { continue; }
    for (var kw = 0; kw < KW; kw++) {
      let xx = iw + pw - kw * dw;
      if (xx < 0 || xx % sw != 0 || xx / sw >= OW) { continue; }
      for (var co = g * Cog; co < (g + 1) * Cog; co++) {
        acc += a[((n * Cout + co) * OH + y / sh) * OW + xx / sw] * b[((co * Cig + ci) * KH + kh) * KW + kw];
      }
    }
  }
  out[i] = acc;
}`
);

/** a = x [N, Cin, H, W], b = dy [N, Cout, OH, OW], out = dw [Cout, Cig, KH, KW] */
export const conv2dWeightGradWGSL = memoWGSL(() =>
  /* wgsl */ `${head()}
  let kw = t % KW; let kh = (t / KW) % KH; let ci = (t / (KW * KH)) % Cig; let co = t / (KW * KH * Cig);
  let c = (co / Cog) * Cig + ci;
  var acc = 0.0;
  for (var n = 0; n < N; n++) {
    for (var oh = 0; oh < OH; oh++) {
      let ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) { continue; }
      for (var ow = 0; ow < OW; ow++) {
        let iw = ow * sw - pw + kw * dw;
        if (iw < 0 || iw >= W) { continue; }
        acc += b[((n * Cout + co) * OH + oh) * OW + ow] * a[((n * Cin + c) * H + ih) * W + iw];
      }
    }
  }
  out[i] = acc;
}`
);

// ---- implicit GEMM ------------------------------------------------------------------------------
// The same three products as GEMMs for the register-blocked template (kernels/gemm.ts), one group
// per z slice; the im2col matrix is never built: loads index the NCHW tensors directly.
//
//   forward   M = Cout/G, N = N*OH*OW, K = Cin/G*KH*KW   A = w,           B = im2col(x)
//   input     M = Cin/G,  N = N*H*W,   K = Cout/G*KH*KW  A = w (per tap), B = dy at the tap's output
//   weight    M = Cout/G, N = Cin/G*KH*KW, K = N*OH*OW  A = dy,          B = im2col(x)^T
//             (split-K variants write partial sums [splitK, Cout, Cin/G, KH, KW] for the caller to add)
// params: [G, M, N, K]; the geometry is compiled in as constants (one pipeline per layer shape).

/** Conv geometry, baked into the shader as constants: divisions by constants become multiplies. */
export interface ConvDims {
  N: number;
  Cin: number;
  H: number;
  W: number;
  Cout: number;
  OH: number;
  OW: number;
  KH: number;
  KW: number;
  s: [number, number];
  p: [number, number];
  d: [number, number];
  G: number;
}

/** The geometry as WGSL constants (u32 sizes, i32 stride / padding / dilation). */
export function convConsts(g: ConvDims): string {
  const u = { Nb: g.N, Cin: g.Cin, H: g.H, W: g.W, Cout: g.Cout, OH: g.OH, OW: g.OW, KH: g.KH, KW: g.KW };
  const i = { sh: g.s[0], sw: g.s[1], ph: g.p[0], pw: g.p[1], dh: g.d[0], dw: g.d[1] };
  return [
    ...Object.entries(u).map(([k, v]) => `const ${k}: u32 = ${v}u;`),
    ...Object.entries(i).map(([k, v]) => `const ${k}: i32 = ${v};`),
    `const Cig: u32 = ${g.Cin / g.G}u; const Cog: u32 = ${g.Cout / g.G}u; const KHW: u32 = ${g.KH * g.KW}u;`,
  ].join("\n");
}

const DIMS = /* wgsl */ `  let g = b;`;

/** The GEMM sources' bindings: the direct kernels' with the inputs renamed (the template uses a and b). */
const gemmIO = (e?: Epilogue) => io(e).replace(" a: ", " a_: ").replace(" b: ", " b_: ");

const each = (n: number, f: (i: number) => string) => [...Array(n).keys()].map(f).join("\n");

/** forward: a_ = x, b_ = w, out = y (epilogue applied at the store; never split-K) */
export const conv2dGemmWGSL = memoWGSL((c: GemmConfig, dims: ConvDims, e?: Epilogue) =>
  gemmWGSL({
    decls: gemmIO(e) + convConsts(dims),
    setup: `${DIMS}
${each(c.tm, (i) => `  let wr${i} = (g * Cog + m_${i}) * K;`)}
${
      each(c.tn, (j) =>
        `  let nb${j} = n_${j} / (OH * OW); let p${j} = n_${j} % (OH * OW);
  let ih${j} = i32(p${j} / OW) * sh - ph; let iw${j} = i32(p${j} % OW) * sw - pw;
  let xb${j} = (nb${j} * Cin + g * Cig) * H * W;`)
    }`,
    perK: `    let ci = k / KHW; let r = k % KHW; let kh = i32(r / KW) * dh; let kw = i32(r % KW) * dw;`,
    loadA: (i) => `b_[wr${i} + k]`,
    loadB: (j) =>
      `select(0.0, a_[xb${j} + (ci * H + u32(ih${j} + kh)) * W + u32(iw${j} + kw)], ` +
      `u32(ih${j} + kh) < H && u32(iw${j} + kw) < W)`,
    store: (i, j, v) =>
      e
        ? `let co = g * Cog + m0 + ${i}u; let o = (nb${j} * Cout + co) * OH * OW + p${j}; ` +
          `out[o] = ${epilogueExpr(e, v, { s: "scale[co]", h: "shift[co]", r: "res[o]" })};`
        : `out[(nb${j} * Cout + g * Cog + m0 + ${i}u) * OH * OW + p${j}] = ${v};`,
  }, c)
);

/** input gradient: a_ = dy, b_ = w, out = dx */
export const conv2dInputGradGemmWGSL = memoWGSL((c: GemmConfig, dims: ConvDims) =>
  gemmWGSL({
    decls: gemmIO() + convConsts(dims),
    setup: `${DIMS}
${
      each(c.tn, (j) =>
        `  let nb${j} = n_${j} / (H * W); let p${j} = n_${j} % (H * W);
  let y${j} = i32(p${j} / W) + ph; let x${j} = i32(p${j} % W) + pw;`)
    }`,
    perK:
      `    let co = g * Cog + k / KHW; let r = k % KHW; let kh = i32(r / KW) * dh; let kw = i32(r % KW) * dw;`,
    loadA: (i) => `b_[(co * Cig + m_${i}) * KHW + r]`,
    loadB: (j) =>
      `select(0.0, a_[((nb${j} * Cout + co) * OH + u32((y${j} - kh) / sh)) * OW + u32((x${j} - kw) / sw)], ` +
      `y${j} >= kh && x${j} >= kw && (y${j} - kh) % sh == 0 && (x${j} - kw) % sw == 0 && ` +
      `u32((y${j} - kh) / sh) < OH && u32((x${j} - kw) / sw) < OW)`,
    store: (i, j, v) => `out[(nb${j} * Cin + g * Cig + m0 + ${i}u) * H * W + p${j}] = ${v};`,
  }, c)
);

/** weight gradient: a_ = x, b_ = dy, out = dw */
export const conv2dWeightGradGemmWGSL = memoWGSL((c: GemmConfig, dims: ConvDims) =>
  gemmWGSL({
    decls: gemmIO() + convConsts(dims),
    setup: `${DIMS}
${
      each(
        c.tn,
        (j) =>
          `  let ci${j} = n_${j} / KHW; let kh${j} = i32((n_${j} % KHW) / KW) * dh; let kw${j} = i32(n_${j} % KW) * dw;`,
      )
    }`,
    perK: `    let nb = k / (OH * OW); let p = k % (OH * OW);
    let ih = i32(p / OW) * sh - ph; let iw = i32(p % OW) * sw - pw;
    let dyb = (nb * Cout + g * Cog) * OH * OW + p; let xb = (nb * Cin + g * Cig) * H * W;`,
    loadA: (i) => `b_[dyb + m_${i} * OH * OW]`,
    loadB: (j) =>
      `select(0.0, a_[xb + (ci${j} * H + u32(ih + kh${j})) * W + u32(iw + kw${j})], ` +
      `u32(ih + kh${j}) < H && u32(iw + kw${j}) < W)`,
    store: (i, j, v) => `out[split * Cout * N + (g * Cog + m0 + ${i}u) * N + n0 + ${j}u] = ${v};`,
  }, c)
);
