// conv2d forward, register-tiled along output rows: what a CPU adapter wants from a 3x3 conv.
//
//   y[n, g*Cog + co, oh, ow] = sum_{ci, kh, kw} x[n, g*Cig + ci, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
//                                               * wt[g, ci, kh, kw, co]
//
// Layouts: x and y NCHW; the weights transposed to wt [G, Cig, KH, KW, Cog] (the caller permutes
// them), so 4 output channels load as one vec4. Requires Cog % 4 == 0.
// Tiling: each thread owns TM output channels (TM / 4 vec4 accumulators) x TN consecutive outputs
// of each of TR rows (n, oh0 .. oh0 + TR - 1, ow0 .. ow0 + TN - 1). Per ci it loads the KH x KW x
// TM / 4 weight vec4s once for its TR rows, and the input rows those rows read (TR + KH - 1 of them
// at stride 1: neighbouring output rows share KH - 1), each a segment of (TN - 1) * sw +
// (KW - 1) * dw + 1 floats used for up to KW taps and TM channels: for a 3x3 stride-1 conv with
// TM = 16, TN = 8, TR = 2 that is 36 vec4 and 40 scalar loads for 2304 multiply-adds, where the
// implicit GEMM (kernels/conv2d.ts) does one load per 4 to 8. On llvmpipe loads are what cost (see
// kernels/matmul.ts, matmulVec4WGSL). The accumulators do not fit in registers either, so each one
// takes its ci's KH x KW terms as one chain, c = fma(w22, s.., ... fma(w00, s.., c)): one trip to
// memory and back per ci instead of one per term (10-38% faster for TR > 1 than per-tap updates,
// bench/RESULTS.md step 90).
// Threads: x over (n, row block, row chunk), 8 consecutive chunks per SIMD group so their weight
// loads hit the same cache lines; y over blocks of TM channels; z over groups. Padding is read as
// zeros (clamped loads, then select); rows, chunks and channels past the edge are skipped on store.
// The input gradient of a stride-1 conv is this kernel too, run on dy with the taps flipped
// (`flip`: tap (kh, kw) reads weight tap (KH-1-kh, KW-1-kw)) and the weights' channel roles
// swapped by the caller (tensor/ops/conv.ts).
// Texture form (`texture`; stride 1, dilation 1, TN a multiple of 4): the input comes zero-padded
// in texel rows (rowsTextureBlock) and the weights as texel rows (g, ci, kh, kw) of Cog / 4 texels,
// both packed by the caller; a row segment is ceil(L / 4) texel fetches with no bounds checks,
// where the storage form makes L clamped scalar loads and selects. llvmpipe fetches texels 7-10x
// faster than it loads from storage buffers (bench/RESULTS.md step 56).
// Planes form (`planes`, within the texture form; W a multiple of 4): the input as it is, its
// image rows folded XF to a texture row (tensor/ops/texture.ts, fold: image row gr = plane H + ih
// at texel (c + (gr % XF) W / 4, gr / XF)), so a copy makes it where the padded form needs a pack
// launch (2.8 ms for 2048 planes of 8 x 8 on llvmpipe). A row segment then starts pw floats before
// a texel: it is one texel fetch more, and the padding is clamped fetches and selects again.
// Epilogue (forward only, never with `flip`; kernels/epilogue.ts): after the loop each thread
// loads its TM channels' scale and shift as TM / 4 vec4s, and each stored vec4 becomes
// act(c * scale + shift + residual) before its 4 scalar stores. Bindings: x, wt, the epilogue's
// buffers, then y.

import { memoWGSL, PARAMS } from "./common.ts";
import { convConsts, type ConvDims } from "./conv2d.ts";
import { type Epilogue, epilogueBuffers, epilogueDecls, epilogueExpr } from "./epilogue.ts";

export interface RowsConfig {
  tm: number;
  tn: number;
  /** output rows per thread (default 1) */
  tr?: number;
  /** read the input and the weights as texels (see below and kernels/texture_pack.ts) */
  texture?: boolean;
  /** the texture form's input as its unpadded planes (see below) */
  planes?: boolean;
}

/**
 * Where the texture form finds its input: each (n, c) plane zero-padded into a block of XR rows of
 * XW texels, XP blocks side by side per band (kernels/texture_pack.ts). Padded column ow + kw holds
 * the input output column ow reads at tap kw, so a thread's segment starts at texel ow0 / 4.
 */
export function rowsTextureBlock({ tn, tr = 1 }: RowsConfig, g: ConvDims): { XR: number; XW: number } {
  const chunks = Math.ceil(g.OW / tn), rowBlocks = Math.ceil(g.OH / tr);
  return { XR: rowBlocks * tr + g.KH - 1, XW: Math.ceil((chunks * tn + g.KW - 1) / 4) };
}

const range = (n: number) => [...Array(n).keys()];

/** `flip`: the input-gradient form (see above); `epilogue`: the fused forward. Not both. */
function conv2dRowsSource(
  cfg: RowsConfig,
  g: ConvDims,
  { flip = false, epilogue: e, XP = 1, XF = 1 }: {
    flip?: boolean;
    epilogue?: Epilogue;
    XP?: number;
    XF?: number;
  } = {},
): string {
  const { tm, tn, tr = 1, texture, planes } = cfg;
  if (flip && e) {
    throw new Error("conv2dRowsWGSL: the epilogue is for the forward conv, not its input gradient");
  }
  const [sh, sw] = g.s, [ph, pw] = g.p, [dh, dw] = g.d;
  if (texture && (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1 || tn % 4 || (planes && g.W % 4))) {
    throw new Error(
      "conv2dRowsWGSL: the texture form is for stride 1, dilation 1, tn % 4 == 0 (planes: W % 4 == 0)",
    );
  }
  const Cog = g.Cout / g.G, chunks = Math.ceil(g.OW / tn), rowBlocks = Math.ceil(g.OH / tr);
  const L = (tn - 1) * sw + (g.KW - 1) * dw + 1; // input floats one row chunk reads per (ci, kh)
  const Q = range(tm / 4), T = range(tn), R = range(tr);
  const acc = (r: number, q: number, t: number) => `c${r}_${q}_${t}`;
  // Per ci: every tap's weights, then the input rows the TR output rows read (row r's tap kh reads
  // offset r * sh + kh * dh from ih0; rows shared where offsets coincide: TR + KH - 1 for stride 1),
  // then each accumulator's KH x KW multiply-adds as one chain
  const offsets = [...new Set(R.flatMap((r) => range(g.KH).map((kh) => r * sh + kh * dh)))];
  const rowOf = (r: number, kh: number) => offsets.indexOf(r * sh + kh * dh);
  const taps = range(g.KH).flatMap((kh) => range(g.KW).map((kw) => [kh, kw]));
  const weight = (kh: number, kw: number, q: number) => {
    const at = flip ? (g.KH - 1 - kh) * g.KW + g.KW - 1 - kw : kh * g.KW + kw;
    return texture
      ? `textureLoad(WT, vec2<u32>(cq${q}, wb + ${at}u), 0)`
      : `wt[wb + ${at * (Cog / 4)}u + cq${q}]`;
  };
  // the planes form: the texels j = lo .. hi (from ow0 / 4) that hold input columns ow0 - pw + u
  const [lo, hi] = [Math.floor(-pw / 4), Math.floor((L - 1 - pw) / 4)];
  const texelOf = (u: number) => [Math.floor((u - pw) / 4) - lo, (((u - pw) % 4) + 4) % 4];
  // input row i (at offset offsets[i]) of this ci, from its first column on: s{i}_0 .. s{i}_(L-1)
  const inputRow = (i: number) =>
    planes
      ? [
        `    let ih${i} = i32(oh0 + ${offsets[i]}u) - ${ph}; let rowIn${i} = u32(ih${i}) < H;`,
        `    let gr${i} = plane * H + u32(clamp(ih${i}, 0, i32(H) - 1)); let gy${i} = gr${i} / XF; let gx${i} = (gr${i} % XF) * W4;`,
        ...range(hi - lo + 1).map((j) =>
          `    let t${i}_${j} = textureLoad(X, vec2<u32>(gx${i} + cx${j}, gy${i}), 0);`
        ),
        ...range(L).map((u) => {
          const [j, lane] = texelOf(u);
          return `    let s${i}_${u} = select(0.0, t${i}_${j}.${"xyzw"[lane]}, rowIn${i} && in${u});`;
        }),
      ]
      : texture
      ? [
        `    let ty${i} = band + oh0 + ${offsets[i]}u;`,
        ...range(Math.ceil(L / 4)).map((j) =>
          `    let t${i}_${j} = textureLoad(X, vec2<u32>(tx + ${j}u, ty${i}), 0);`
        ),
        ...range(L).map((u) => `    let s${i}_${u} = t${i}_${u >> 2}.${"xyzw"[u & 3]};`),
      ]
      : [
        `    let ih${i} = ih0 + ${offsets[i]};
    let row${i} = (plane + u32(clamp(ih${i}, 0, i32(H) - 1))) * W; let rowIn${i} = u32(ih${i}) < H;`,
        ...range(L).map((u) => `    let s${i}_${u} = select(0.0, x[row${i} + x${u}], rowIn${i} && in${u});`),
      ];
  const body = [
    `    let wb = (g * Cig + ci) * ${g.KH * g.KW * (texture ? 1 : Cog / 4)}u;`,
    ...taps.flatMap(([kh, kw]) => Q.map((q) => `    let w${kh}_${kw}_${q} = ${weight(kh, kw, q)};`)),
    ...offsets.flatMap((_, i) => inputRow(i)),
    ...R.flatMap((r) =>
      Q.flatMap((q) =>
        T.map((t) =>
          `    ${acc(r, q, t)} = ${
            taps.reduce(
              (sum, [kh, kw]) =>
                `fma(w${kh}_${kw}_${q}, vec4<f32>(s${rowOf(r, kh)}_${t * sw + kw * dw}), ${sum})`,
              acc(r, q, t),
            )
          };`
        )
      )
    ),
  ];
  // channel q of this thread's TM as a vec4 of 4 per-channel values (cq clamped: skipped on store)
  const perChannel = (q: number, buf: string) =>
    `vec4<f32>(${range(4).map((k) => `${buf}[g * Cog + cq${q} * 4u + ${k}u]`).join(", ")})`;
  const epilogueLoads = !e ? [] : Q.flatMap((q) => [
    ...(e.scale ? [`  let sc${q} = ${perChannel(q, "scale")};`] : []),
    ...(e.shift ? [`  let sf${q} = ${perChannel(q, "shift")};`] : []),
  ]);
  const residual = (o: string) =>
    `vec4<f32>(${range(4).map((k) => `res[${o} + ${k}u * OH * OW]`).join(", ")})`;
  const { XR, XW } = rowsTextureBlock(cfg, g);
  const inputs = texture
    ? `${
      planes
        ? `const XF = ${XF}u; const W4 = ${g.W / 4}u;`
        : `const XR = ${XR}u; const XW = ${XW}u; const XP = ${XP}u;`
    }
@group(0) @binding(1) var X: texture_2d<f32>;
@group(0) @binding(2) var WT: texture_2d<f32>;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;`;
  // per ci: where its plane starts (texture: the block's band row and first texel of the segment)
  const plane = planes
    ? `    let plane = nb * Cin + g * Cig + ci;`
    : texture
    ? `    let plane = nb * Cin + g * Cig + ci;
    let band = plane / XP * XR; let tx = plane % XP * XW + ow0 / 4u;`
    : `    let plane = (nb * Cin + g * Cig + ci) * H;`;
  return /* wgsl */ `
${convConsts(g)}
const CHUNKS = ${chunks}u; const ROWBLOCKS = ${rowBlocks}u;
${PARAMS} // [G]: the rest is compiled in
${inputs}${e ? `\n${epilogueDecls(e, 3)}` : ""}
@group(0) @binding(${3 + epilogueBuffers(e)}) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let chunk = gid.x;
  if (chunk >= Nb * ROWBLOCKS * CHUNKS || wid.z >= param(0)) { return; }
  let ow0 = (chunk % CHUNKS) * ${tn}u; let oh0 = (chunk / CHUNKS) % ROWBLOCKS * ${tr}u;
  let nb = chunk / (CHUNKS * ROWBLOCKS);
  let g = wid.z; let co0 = wid.y * ${tm}u;
${
    planes
      ? [
        `  let iw0 = i32(ow0) - ${pw};`,
        ...range(hi - lo + 1).map((j) =>
          `  let cx${j} = u32(clamp(i32(ow0 / 4u) + ${j + lo}, 0, i32(W4) - 1));`
        ),
        ...range(L).map((u) => `  let in${u} = u32(iw0 + ${u}) < W;`),
      ].join("\n")
      : texture
      ? ""
      : `  let ih0 = i32(oh0) * ${sh} - ${ph}; let iw0 = i32(ow0) * ${sw} - ${pw};
${
        range(L).map((t) =>
          `  let x${t} = u32(clamp(iw0 + ${t}, 0, i32(W) - 1)); let in${t} = u32(iw0 + ${t}) < W;`
        )
          .join("\n")
      }`
  }
${Q.map((q) => `  let cq${q} = min(co0 / 4u + ${q}u, Cog / 4u - 1u);`).join("\n")}
${R.flatMap((r) => Q.flatMap((q) => T.map((t) => `  var ${acc(r, q, t)} = vec4<f32>(0.0);`))).join("\n")}
  for (var ci = 0u; ci < Cig; ci++) {
${plane}
${body.join("\n")}
  }
${epilogueLoads.map((l) => `${l}\n`).join("")}${
    R.flatMap((r) =>
      Q.flatMap((q) =>
        T.map((t) => {
          const o = `o${r}_${q}_${t}`, c = acc(r, q, t);
          const v = epilogueExpr(e, c, { s: `sc${q}`, h: `sf${q}`, r: residual(o) }, "vec4<f32>()");
          return `  if (co0 + ${4 * q}u < Cog && oh0 + ${r}u < OH && ow0 + ${t}u < OW) {
    let ${o} = ((nb * Cout + g * Cog + co0 + ${4 * q}u) * OH + oh0 + ${r}u) * OW + ow0 + ${t}u;${
            e ? `\n    let v${c} = ${v};` : ""
          }
${range(4).map((k) => `    y[${o} + ${k}u * OH * OW] = ${e ? `v${c}` : c}[${k}];`).join("\n")}
  }`;
        })
      )
    ).join("\n")
  }
}`;
}

export const conv2dRowsWGSL = memoWGSL(conv2dRowsSource);

/** Workgroups: x over row chunks (32 per workgroup), y over blocks of TM channels, z over groups. */
export const conv2dRowsGrid = ({ tm, tn, tr = 1 }: RowsConfig, g: ConvDims): [number, number, number] => [
  Math.ceil((g.N * Math.ceil(g.OH / tr) * Math.ceil(g.OW / tn)) / 32),
  Math.ceil(g.Cout / g.G / tm),
  g.G,
];

// ---- weight gradient ----------------------------------------------------------------------------
//   dw[g*Cog + co, ci, kh, kw] = sum_{n, oh, ow} dy[n, g*Cog + co, oh, ow] * x[n, g*Cig + ci, ih, iw],
//   ih = oh*sh - ph + kh*dh, iw = ow*sw - pw + kw*dw
// Each thread owns TCO output channels x TCI input channels x every tap, as vec4 accumulators over 4
// consecutive ow (summed across at the end). It walks the outputs S rows (`step`) x 4 columns at a
// time: per step it loads S dy vec4s per output channel and, per ci, the input rows those S rows
// read (S + KH - 1 of them at stride 1), each a segment of 3*sw + (KW-1)*dw + 1 floats shared by the
// KW taps: for 3x3 stride 1 with TCO = 16, TCI = 2, S = 4, 64 vec4 and 72 scalar loads for 1152 vec4
// multiply-adds. The 16 x 2 x 9 accumulators live in memory, so each takes its S terms as one chain,
// a = fma(d3, x3, fma(d2, x2, fma(d1, x1, fma(d0, x0, a)))): S = 4 is 20-35% faster than one row a
// step, and 8 is slower again (bench/RESULTS.md step 91). Rows past OH read as zero dy.
// Requires OW % 4 == 0 (aligned dy rows) and at most 9 taps (registers).
// Split over images (`splits`): each z slice sums its share of the batch into a partial
// [splits, Cout, Cig, KH, KW] for the caller to add (kernels/gemm.ts, splitSumWGSL).
// Threads: x over (co block, ci block); z over (group, split).
// Texture form (`texture`; stride 1, dilation 1): x comes as the forward's texture form packs it
// (rowsTextureBlock with TN = 4: zero-padded planes, XP blocks to a band), so a segment is
// ceil(L / 4) texel fetches without clamps or selects; dy as blocks of OH rows of OW / 4 texels,
// DP to a band. The 64 vec4 and 72 scalar storage loads above become 64 + 24 texel fetches.

export interface WeightRowsConfig {
  tco: number;
  tci: number;
  splits: number;
  /** read x and dy as texels (see above) */
  texture?: boolean;
  /** output rows a step (default 4, see above) */
  step?: number;
}

function conv2dRowsWeightGradSource(
  { tco, tci, splits, texture, step = 4 }: WeightRowsConfig,
  g: ConvDims,
  { XP = 1, DP = 1 }: { XP?: number; DP?: number } = {},
): string {
  const [sh, sw] = g.s, [ph, pw] = g.p, [dh, dw] = g.d;
  if (texture && (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1)) {
    throw new Error("conv2dRowsWeightGradWGSL: the texture form is for stride 1 and dilation 1");
  }
  const Cig = g.Cin / g.G, Cog = g.Cout / g.G, taps = range(g.KH * g.KW);
  const L = 3 * sw + (g.KW - 1) * dw + 1; // input floats 4 outputs of a row read per (ci, kh)
  const O = range(tco), C = range(tci), U = range(L), J = range(step);
  // the input rows a step reads, as offsets from row oh * sh - ph: step j's tap row kh reads
  // j * sh + kh * dh, and the steps share those that coincide
  const offsets = [...new Set(J.flatMap((j) => range(g.KH).map((kh) => j * sh + kh * dh)))];
  const rowOf = (j: number, kh: number) => offsets.indexOf(j * sh + kh * dh);
  const perImages = Math.ceil(g.N / splits);
  const acc = (o: number, c: number, t: number) => `a${o}_${c}_${t}`;
  const window = (i: number, kw: number) =>
    `vec4<f32>(${range(4).map((t) => `s${i}_${t * sw + kw * dw}`).join(", ")})`;
  const { XR, XW } = rowsTextureBlock({ tm: 4, tn: 4 }, g);
  const inputs = texture
    ? `const XR = ${XR}u; const XW = ${XW}u; const XP = ${XP}u; const DP = ${DP}u;
@group(0) @binding(1) var X: texture_2d<f32>;
@group(0) @binding(2) var DY: texture_2d<f32>;`
    : `@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;`;
  // step j's dy vec4 for channel o; rows past OH (OH not a multiple of the step) are zeros
  const dyLoad = (o: number, j: number) => {
    const oh = j ? `min(oh + ${j}u, OH - 1u)` : "oh";
    const load = texture
      ? `textureLoad(DY, vec2<u32>(pd${o} % DP * (OW / 4u) + ow0 / 4u, pd${o} / DP * OH + ${oh}), 0)`
      : `dy[((n * Cout + dyc${o}) * OH + ${oh}) * (OW / 4u) + ow0 / 4u]`;
    return `let d${o}_${j} = ${j ? `select(vec4<f32>(0.0), ${load}, oh + ${j}u < OH)` : load};`;
  };
  // the channel's input row at offset offsets[i]: s{i}_0 .. s{i}_(L-1)
  const segment = (i: number) =>
    texture
      ? [
        `          let ty${i} = px / XP * XR + min(oh + ${offsets[i]}u, XR - 1u);`,
        ...range(Math.ceil(L / 4)).map((j) =>
          `          let t${i}_${j} = textureLoad(X, vec2<u32>(tx + ${j}u, ty${i}), 0);`
        ),
        ...U.map((u) => `          let s${i}_${u} = t${i}_${u >> 2}.${"xyzw"[u & 3]};`),
      ]
      : [
        `          let ih${i} = i32(oh) * ${sh} - ${ph} + ${offsets[i]};
          let row${i} = (plane + u32(clamp(ih${i}, 0, i32(H) - 1))) * W; let rowIn${i} = u32(ih${i}) < H;`,
        ...U.map((u) => `          let s${i}_${u} = select(0.0, x[row${i} + x${u}], rowIn${i} && in${u});`),
      ];
  const channel = (c: number) =>
    texture
      ? `          let px = n * Cin + xc${c}; let tx = px % XP * XW + ow0 / 4u;`
      : `          let plane = (n * Cin + xc${c}) * H;`;
  return /* wgsl */ `
${convConsts(g)}
const CIB = ${Math.ceil(Cig / tci)}u; const COB = ${Math.ceil(Cog / tco)}u;
${PARAMS} // [G]: the rest is compiled in
${inputs}
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(32)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let cob = gid.x / CIB; let ci0 = (gid.x % CIB) * ${tci}u; let co0 = cob * ${tco}u;
  let g = wid.z / ${splits}u; let split = wid.z % ${splits}u;
  if (cob >= COB || g >= param(0)) { return; }
${O.map((o) => `  let dyc${o} = g * Cog + min(co0 + ${o}u, Cog - 1u);`).join("\n")}
${C.map((c) => `  let xc${c} = g * Cig + min(ci0 + ${c}u, Cig - 1u);`).join("\n")}
${O.flatMap((o) => C.flatMap((c) => taps.map((t) => `  var ${acc(o, c, t)} = vec4<f32>(0.0);`))).join("\n")}
  for (var n = split * ${perImages}u; n < min(${g.N}u, (split + 1u) * ${perImages}u); n++) {
    for (var oh = 0u; oh < OH; oh += ${step}u) {
      for (var ow0 = 0u; ow0 < OW; ow0 += 4u) {
${texture ? O.map((o) => `        let pd${o} = n * Cout + dyc${o};`).join("\n") : ""}
${J.flatMap((j) => O.map((o) => `        ${dyLoad(o, j)}`)).join("\n")}
${
    texture ? "" : [
      `        let iw0 = i32(ow0) * ${sw} - ${pw};`,
      ...U.map((u) =>
        `        let x${u} = u32(clamp(iw0 + ${u}, 0, i32(W) - 1)); let in${u} = u32(iw0 + ${u}) < W;`
      ),
    ].join("\n")
  }
${
    C.flatMap((c) => [
      `        {`,
      channel(c),
      ...offsets.flatMap((_, i) => segment(i)),
      ...range(g.KH).flatMap((kh) =>
        range(g.KW).flatMap((kw) => {
          const t = kh * g.KW + kw;
          return [
            ...J.map((j) => `          let w${j}_${t} = ${window(rowOf(j, kh), kw)};`),
            ...O.map((o) =>
              `          ${acc(o, c, t)} = ${
                J.reduce((sum, j) => `fma(d${o}_${j}, w${j}_${t}, ${sum})`, acc(o, c, t))
              };`
            ),
          ];
        })
      ),
      `        }`,
    ]).join("\n")
  }
      }
    }
  }
${
    O.flatMap((o) =>
      C.map((c) =>
        `  if (co0 + ${o}u < Cog && ci0 + ${c}u < Cig) {
    let at = ((split * Cout + g * Cog + co0 + ${o}u) * Cig + ci0 + ${c}u) * ${g.KH * g.KW}u;
${taps.map((t) => `    out[at + ${t}u] = dot(${acc(o, c, t)}, vec4<f32>(1.0));`).join("\n")}
  }`
      )
    ).join("\n")
  }
}`;
}

export const conv2dRowsWeightGradWGSL = memoWGSL(conv2dRowsWeightGradSource);

export const conv2dRowsWeightGradGrid = (
  { tco, tci, splits }: WeightRowsConfig,
  g: ConvDims,
): [number, number, number] => [
  Math.ceil((Math.ceil(g.Cout / g.G / tco) * Math.ceil(g.Cin / g.G / tci)) / 32),
  1,
  g.G * splits,
];

// ---- the input gradient of a strided conv ---------------------------------------------------------
//   dyz[n, c, j, i] = dy[n, c, j / sh, i / sw]   where sh divides j and sw divides i, else 0
// dy [N, C, OH, OW] with sh - 1 zero rows and sw - 1 zero columns between its own, Hd x Wd
// (trailing zeros where Hd > sh * (OH - 1) + 1). A stride-s conv's input gradient is the flipped
// stride-1 conv of this (tensor/ops/conv.ts), which the rows kernel above runs: s^2 the
// multiply-adds of the exact product, most of them by zero, yet faster on llvmpipe than the
// implicit GEMM's per-element index arithmetic. One thread per output element.   params: [n]

function zeroInsertSource(g: ConvDims, Hd: number, Wd: number): string {
  const [sh, sw] = g.s;
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dyz: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let at = gid.x + gid.y * nwg.x * 64u;
  if (at >= param(0)) { return; }
  let i = at % ${Wd}u; let j = at / ${Wd}u % ${Hd}u; let plane = at / ${Hd * Wd}u;
  let oh = j / ${sh}u; let ow = i / ${sw}u;
  let hit = j % ${sh}u == 0u && i % ${sw}u == 0u && oh < ${g.OH}u && ow < ${g.OW}u;
  let src = (plane * ${g.OH}u + min(oh, ${g.OH - 1}u)) * ${g.OW}u + min(ow, ${g.OW - 1}u);
  dyz[at] = select(0.0, dy[src], hit);
}`;
}

export const zeroInsertWGSL = memoWGSL(zeroInsertSource);
