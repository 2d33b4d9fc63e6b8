// conv2d over NCHW input and [Cout, Cin/groups, KH, KW] weights, in three direct kernels.
// Each thread owns one element of what it writes, so no atomics are needed:
//
//   forward       y[n, co, oh, ow]   = sum_{ci, kh, kw} x[n, g*Cig + ci, oh*s - p + kh*d, ...] * w[co, ci, kh, kw]
//   input grad    dx[n, c, ih, iw]   = sum over the (co, kh, kw) whose tap lands on (ih, iw)
//   weight grad   dw[co, ci, kh, kw] = sum_{n, oh, ow} dy[n, co, oh, ow] * x[n, g*Cig + ci, ih, iw]
//
// params: [total, N, Cin, H, W, Cout, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, groups]
// Tiling: none (correctness reference); issue P2 turns these into implicit GEMMs.

import { MAIN, PARAMS } from "./common.ts";

const HEAD = /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= params[0]) { return; }
  let N = i32(params[1]); let Cin = i32(params[2]); let H = i32(params[3]); let W = i32(params[4]);
  let Cout = i32(params[5]); let OH = i32(params[6]); let OW = i32(params[7]);
  let KH = i32(params[8]); let KW = i32(params[9]);
  let sh = i32(params[10]); let sw = i32(params[11]); let ph = i32(params[12]); let pw = i32(params[13]);
  let dh = i32(params[14]); let dw = i32(params[15]); let G = i32(params[16]);
  let Cig = Cin / G; let Cog = Cout / G;
  let t = i32(i);`;

/** a = x [N, Cin, H, W], b = w [Cout, Cig, KH, KW], out = y [N, Cout, OH, OW] */
export const conv2dWGSL = () =>
  /* wgsl */ `${HEAD}
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
  out[i] = acc;
}`;

/** a = dy [N, Cout, OH, OW], b = w [Cout, Cig, KH, KW], out = dx [N, Cin, H, W] */
export const conv2dInputGradWGSL = () =>
  /* wgsl */ `${HEAD}
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
}`;

/** a = x [N, Cin, H, W], b = dy [N, Cout, OH, OW], out = dw [Cout, Cig, KH, KW] */
export const conv2dWeightGradWGSL = () =>
  /* wgsl */ `${HEAD}
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
}`;
