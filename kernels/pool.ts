// 2-D pooling over NCHW planes: max, average, and adaptive average, forward and backward.
//
// A window along one axis for output o covers input rows start, start + step, ... < end:
//   max / avg:  start = o * s - p, end = start + (k - 1) * d + 1, step = d
//   adaptive:   start = floor(o * In / Out), end = ceil((o + 1) * In / Out), step = 1
// Forward: one thread per output. Backward: one thread per input element, visiting only the
// outputs whose window can contain it (max pooling compares with the saved argmax), so there are
// no atomics and the result is deterministic. Max and average windows are unrolled (MAX_UNROLLED).
// The sizes are compiled in (a model pools at one or two shapes): the index arithmetic's divisions
// and remainders become multiplies, which on a CPU adapter made the max-pool backward of a ResNet
// stem ~4x faster than reading them from params. params: [total].

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export type PoolMode = "max" | "avg" | "adaptive";

export interface PoolDims {
  H: number;
  W: number;
  OH: number;
  OW: number;
  k: [number, number];
  s: [number, number];
  p: [number, number];
  d: [number, number];
  countIncludePad: boolean;
}

const COMMON = (mode: PoolMode, q: PoolDims) => /* wgsl */ `
${PARAMS}
const H = ${q.H}; const W = ${q.W}; const OH = ${q.OH}; const OW = ${q.OW};
const KH = ${q.k[0]}; const KW = ${q.k[1]}; const sh = ${q.s[0]}; const sw = ${q.s[1]};
const ph = ${q.p[0]}; const pw = ${q.p[1]}; const dh = ${q.d[0]}; const dw = ${q.d[1]};
struct Win { start: i32, end: i32, step: i32 }
fn win(o: i32, In: i32, Out: i32, k: i32, s: i32, p: i32, d: i32) -> Win {
  ${
  mode === "adaptive"
    ? "return Win((o * In) / Out, ((o + 1) * In + Out - 1) / Out, 1);"
    : "let start = o * s - p;\n  return Win(start, start + (k - 1) * d + 1, d);"
}
}
// Outputs whose window may contain input row x: [lo, hi].
fn outRange(x: i32, In: i32, Out: i32, k: i32, s: i32, p: i32, d: i32) -> vec2<i32> {
  ${
  mode === "adaptive"
    ? "return vec2<i32>((x * Out) / In, min(Out - 1, ((x + 1) * Out - 1) / In));"
    : "let reach = x + p - (k - 1) * d;\n  return vec2<i32>(select(0, (reach + s - 1) / s, reach > 0), min(Out - 1, (x + p) / s));"
}
}
fn divisor(wh: Win, ww: Win, H: i32, W: i32, ph: i32, pw: i32) -> f32 {
  ${
  mode === "adaptive"
    ? "return f32((wh.end - wh.start) * (ww.end - ww.start));"
    : q.countIncludePad
    ? "return f32((min(wh.end, H + ph) - wh.start) * (min(ww.end, W + pw) - ww.start));"
    : "return f32((min(wh.end, H) - max(wh.start, 0)) * (min(ww.end, W) - max(ww.start, 0)));"
}
}`;

const range = (n: number) => [...Array(n).keys()];

/**
 * Max and average windows up to this many taps are unrolled, every tap in straight-line code with a
 * validity mask: a CPU adapter runs a loop whose bounds differ per thread as a loop over its SIMD
 * lanes. (Adaptive windows differ in size per output, and keep the loops.)
 */
const MAX_UNROLLED = 64;
const unrolled = (mode: PoolMode, q: PoolDims) => mode !== "adaptive" && q.k[0] * q.k[1] <= MAX_UNROLLED;

/** Forward: the window's taps in row-major order, so max keeps the first of equal values. */
function windowTaps(mode: PoolMode, q: PoolDims): string {
  if (!unrolled(mode, q)) {
    return `  for (var ih = max(wh.start, 0); ih < min(wh.end, H); ih++) {
    if ((ih - wh.start) % wh.step != 0) { continue; }
    for (var iw = max(ww.start, 0); iw < min(ww.end, W); iw++) {
      if ((iw - ww.start) % ww.step != 0) { continue; }
      let v = x[(plane * H + ih) * W + iw];
      ${mode === "max" ? "if (best < 0 || v > acc) { acc = v; best = ih * W + iw; }" : "acc += v;"}
    }
  }`;
  }
  return range(q.k[0]).flatMap((kh) =>
    range(q.k[1]).map((kw) => {
      const at = `let ih = wh.start + ${kh * q.d[0]}; let iw = ww.start + ${kw * q.d[1]};
    let ok = ih >= 0 && ih < H && iw >= 0 && iw < W;
    let v = x[(plane * H + clamp(ih, 0, H - 1)) * W + clamp(iw, 0, W - 1)];`;
      const use = mode === "max"
        ? "if (ok && (best < 0 || v > acc)) { acc = v; best = ih * W + iw; }"
        : "acc += select(0.0, v, ok);";
      return `  {\n    ${at}\n    ${use}\n  }`;
    })
  ).join("\n");
}

export const poolWGSL = memoWGSL((mode: PoolMode, q: PoolDims) => /* wgsl */ `
${COMMON(mode, q)}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${mode === "max" ? "@group(0) @binding(3) var<storage, read_write> arg: array<i32>;" : ""}
${MAIN}
  if (i >= param(0)) { return; }
  let t = i32(i);
  let ow = t % OW; let oh = (t / OW) % OH; let plane = t / (OW * OH);
  let wh = win(oh, H, OH, KH, sh, ph, dh); let ww = win(ow, W, OW, KW, sw, pw, dw);
  var acc = ${mode === "max" ? "bitcast<f32>(0xff800000u)" : "0.0"};
  var best = -1;
${windowTaps(mode, q)}
  ${mode === "max" ? "out[i] = acc;\n  arg[i] = best;" : "out[i] = acc / divisor(wh, ww, H, W, ph, pw);"}
}`);

/**
 * Backward: the outputs whose window may hold this input, [rh.x, rh.y] x [rw.x, rw.y]. Unrolled,
 * there are at most ceil(window extent / stride) of them per axis, each checked and masked.
 */
function outputTaps(mode: PoolMode, q: PoolDims): string {
  const add = mode === "max"
    ? "if (arg[o] == ih * W + iw) { acc += g[o]; }"
    : "acc += g[o] / divisor(wh, ww, H, W, ph, pw);";
  const inWin = (x: string, w: string) =>
    `${x} >= ${w}.start && ${x} < ${w}.end && (${x} - ${w}.start) % ${w}.step == 0`;
  if (!unrolled(mode, q)) {
    return `  for (var oh = rh.x; oh <= rh.y; oh++) {
    let wh = win(oh, H, OH, KH, sh, ph, dh);
    if (!(${inWin("ih", "wh")})) { continue; }
    for (var ow = rw.x; ow <= rw.y; ow++) {
      let ww = win(ow, W, OW, KW, sw, pw, dw);
      if (!(${inWin("iw", "ww")})) { continue; }
      let o = (plane * OH + oh) * OW + ow;
      ${add}
    }
  }`;
  }
  const reach = (a: 0 | 1) => Math.ceil(((q.k[a] - 1) * q.d[a] + 1) / q.s[a]);
  return range(reach(0)).flatMap((r) =>
    range(reach(1)).map((c) =>
      `  {
    let oh = rh.x + ${r}; let ow = rw.x + ${c};
    let wh = win(oh, H, OH, KH, sh, ph, dh); let ww = win(ow, W, OW, KW, sw, pw, dw);
    if (oh <= rh.y && ow <= rw.y && ${inWin("ih", "wh")} && ${inWin("iw", "ww")}) {
      let o = (plane * OH + oh) * OW + ow;
      ${add}
    }
  }`
    )
  ).join("\n");
}

export const poolGradWGSL = memoWGSL((mode: PoolMode, q: PoolDims) => /* wgsl */ `
${COMMON(mode, q)}
@group(0) @binding(1) var<storage, read> g: array<f32>;
${mode === "max" ? "@group(0) @binding(2) var<storage, read> arg: array<i32>;" : ""}
@group(0) @binding(${mode === "max" ? 3 : 2}) var<storage, read_write> out: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let t = i32(i);
  let iw = t % W; let ih = (t / W) % H; let plane = t / (W * H);
  let rh = outRange(ih, H, OH, KH, sh, ph, dh); let rw = outRange(iw, W, OW, KW, sw, pw, dw);
  var acc = 0.0;
${outputTaps(mode, q)}
  out[i] = acc;
}`);
