// Fused attention, register-blocked over rows, with vec4 loads: the same three products as
// kernels/attention.ts (same parameters, masks, statistics and outputs), for CPU adapters.
//
// There, a thread owns one query (or key) row and loads every key (or query) row it meets one
// float at a time: one load per multiply-add. Here a thread owns R rows and loads the rows it
// meets as D/4 vec4s, once for all R: per key, the forward does 2 * D / 4 vec4 loads for
// 2 * R * D multiply-adds. On llvmpipe a load costs ~50 vector fmas (kernels/matmul.ts), so the
// R rows' registers (q, o, and their running softmax statistics) are what buys the speed.
//
//   forward  thread = (bh, R query rows):  online softmax over the keys, o = P V, lse per row
//   dQ       thread = (bh, R query rows):  D_i = dO_i . O_i, dQ_i = scale * sum_j P_ij (dO_i . V_j - D_i) K_j
//   dK, dV   thread = (bh, R key rows):    dV_j = sum_i P_ij dO_i,  dK_j = scale * sum_i dS_ij Q_i
//
// Those registers are more than a CPU has (the dK/dV pass's 7 rows hold 1,792 floats a lane), so
// llvmpipe keeps the sums in memory: each multiply-add into one is a load, an fma and a store. A
// step over C rows of the other side (`step`) chains C fmas into each sum before it goes back:
// two a step made the passes 7-29% faster (bench/RESULTS.md step 85). Workgroups are 64 threads,
// or `group` where a pass has too few threads to share 64-thread workgroups evenly between cores.
//
// Texture form (`texture`; CPU adapters): q, k, v and dO (not O) come as rgba32float textures
// (tensor/ops/texture.ts, rowsTexture): the buffer's lines of st floats from the operand's offset,
// 2^f lines to a texture row, f in the layout's offset word. Row (b, h, t), r = b sb + h sh + t st,
// lies in line l = r / st from texel x = r % st / 4 on: at texel (x + (l % 2^f) st / 4, l / 2^f).
// Row t + j of a head is line l + j. llvmpipe fetches texels 7-10x faster than it loads from
// storage (bench/RESULTS.md step 56).
// Requires D % 4 == 0 and every operand's offset and strides multiples of 4 (checked by the caller).
// Rows past the end are clamped on load and skipped on store; under the causal mask a query block
// stops at its last row's last visible key, and a key block starts at its first row's first query.
// params: as kernels/attention.ts.

import { LAYOUT, ROW_LAYOUT } from "./attention.ts";
import type { AttentionPass } from "./attention_tiled.ts";
import { main, memoWGSL, PARAMS } from "./common.ts";

/** One blocked kernel's shape, as a tuning variant names it (tensor/webgpu/variants.ts). */
export interface AttentionBlock {
  /** rows of its own side per thread (query rows; key rows in the dK/dV pass) */
  rows: number;
  /** q, k, v and dO read as texels */
  texture?: boolean;
  /** rows of the other side a step (default 1) */
  step?: number;
  /** threads per workgroup (default 64) */
  group?: number;
}

const range = (n: number) => [...Array(n).keys()];
const NEG_INF = "bitcast<f32>(0xff800000u)";

const COMMON = /* wgsl */ `
${PARAMS}
${ROW_LAYOUT}
/** rowAt in vec4s */
fn row4(L: u32, bh: u32, t: u32) -> u32 { return rowAt(L, bh, t) / 4u; }
fn keyShown(bh: u32, j: u32) -> bool {
  return param(6) == 0u || pad[(bh / param(3)) * param(2) + j] == 0.0;
}
fn causalShown(i: u32, j: u32) -> bool { return param(5) == 0u || j + param(1) <= i + param(2); }
/**
 * Thread i's head and block of rows. Heads vary fastest, so the lanes that a CPU adapter runs as
 * one SIMD group share a block, and with it their loop's bounds under the causal mask: lanes that
 * end early no longer ride along to their neighbours' end. Blocks are dealt from both ends
 * (0, n - 1, 1, n - 2, ...), so any run of threads, a workgroup, mixes long loops and short.
 */
fn headBlock(i: u32, blocks: u32) -> vec2<u32> {
  let b = i / param(0);
  return vec2<u32>(i % param(0), select(blocks - 1u - b / 2u, b / 2u, b % 2u == 0u));
}`;

/** sum over c of dot(x{r}_c, y_c): one row's dot product with a loaded row, as vec4 dots. */
const dotRow = (x: string, y: string, D: number) =>
  range(D / 4).map((c) => `dot(${x}_${c}, ${y}${c})`).join(" + ");

/**
 * Where the kernels find their rows: in storage, a row's place is its first vec4's index; in the
 * texture form, its first texel's coordinates (see above).
 */
interface Rows {
  /** the place of row t of operand L (QL, KL, VL, GL) in head bh */
  at: (L: string, t: string) => string;
  /** vec4 c of the row at `place` in operand `name` (q, k, v, dO) */
  load: (name: string, place: string, c: number) => string;
  /** in the loop over rows `row` of the other side: `let <name> = <its place in operand L>;` */
  step: (name: string, L: string, row?: string) => string;
  /** before the loop */
  setup: string;
}

const TEXTURE_OF: Record<string, string> = { q: "Qt", k: "Kt", v: "Vt", dO: "Gt" };

function rows(texture: boolean): Rows {
  const first = (L: string) => L[0].toLowerCase();
  if (!texture) {
    return {
      at: (L, t) => `row4(${L}, bh, ${t})`,
      load: (name, place, c) => `${name}[${place} + ${c}u]`,
      step: (name, L, row = "j") => `let ${name} = (${first(L)}0 + ${row} * ${first(L)}s) / 4u;`,
      setup: ["KL", "VL", "QL", "GL"]
        .map((L) => `  let ${first(L)}0 = rowAt(${L}, bh, 0u); let ${first(L)}s = param(${L} + 3u);`)
        .join("\n"),
    };
  }
  return {
    at: (L, t) => `folded(${L}, rowLine(${L}, bh, ${t}))`,
    load: (name, place, c) => `textureLoad(${TEXTURE_OF[name]}, ${place} + vec2<u32>(${c}u, 0u), 0)`,
    step: (name, L, row = "j") => {
      const [p, f] = [`${first(L)}p0`, `${first(L)}f`];
      return `let ${name} = vec2<u32>(${p}.x + ((${p}.y + ${row}) & ${f}.x) * ${f}.y, (${p}.y + ${row}) >> ${f}.z);`;
    },
    // per operand: row 0's (texel, line), and its fold as (lines per texture row - 1, texels per line, log2)
    setup: ["KL", "VL", "QL", "GL"].map((L) =>
      `  let ${first(L)}p0 = rowLine(${L}, bh, 0u); let ${first(L)}f = fold(${L});`
    ).join("\n"),
  };
}

/** `let name{r}_{c} = (vec4 c of row r) * scale` for every r and c. */
const loadRows = (
  rs: Rows,
  name: string,
  array: string,
  rowOf: (r: number) => string,
  R: number,
  D: number,
  mul = "",
) =>
  range(R).flatMap((r) =>
    range(D / 4).map((c) => `  let ${name}${r}_${c} = ${rs.load(array, rowOf(r), c)}${mul};`)
  );

/**
 * In a query block's loop over keys j, C at a time: key jj{s} = j + s (clamped; in{s} whether it
 * is before jEnd), its mask, its rows' places, and the rows of `load` (k, v) as {name}{s}_{c}.
 */
const keyStep = (C: number, D: number, rs: Rows, load: string[]) =>
  range(C).map((s) =>
    `    let jj${s} = min(j + ${s}u, jEnd - 1u); let in${s} = j + ${s}u < jEnd; let shown${s} = keyShown(bh, jj${s});
    ${rs.step(`kr${s}`, "KL", `jj${s}`)} ${rs.step(`vr${s}`, "VL", `jj${s}`)}
${
      load.map((n) =>
        range(D / 4).map((c) => `    let ${n}${s}_${c} = ${rs.load(n, `${n}r${s}`, c)};`).join("\n")
      ).join("\n")
    }`
  ).join("\n");

const QUERY_BLOCK = (R: number, rs: Rows) => /* wgsl */ `
  let Tq = param(1); let Tk = param(2);
  let blocks = (Tq + ${R - 1}u) / ${R}u;
  if (i >= param(0) * blocks) { return; }
  let hb = headBlock(i, blocks); let bh = hb.x; let row0 = hb.y * ${R}u;
  let scale = bitcast<f32>(param(4));
${
  range(R).map((r) =>
    `  let t${r} = min(row0 + ${r}u, Tq - 1u); let sr${r} = bh * Tq + t${r}; let qr${r} = ${
      rs.at("QL", `t${r}`)
    };`
  ).join("\n")
}
  // under the causal mask no row of the block sees a key past its last row's
  let jEnd = select(Tk, u32(clamp(i32(min(row0 + ${R}u, Tq) + Tk) - i32(Tq), 0, i32(Tk))), param(5) != 0u);`;

/**
 * A pass's bindings, in the op's order (its reads, then its writes): q, k, v and dO as rows in
 * storage or, in the texture form, textures. The dQ pass reads O and writes the statistics' D.
 */
function bindings(texture: boolean, pass: AttentionPass): string {
  const [reads, writes] = {
    forward: [["q", "k", "v", "pad"], ["o", "stats"]],
    dq: [["q", "k", "v", "pad", "dO", "o"], ["out", "stats"]],
    dkv: [["q", "k", "v", "pad", "stats", "dO"], ["out"]],
  }[pass];
  const decl = (n: string, access: string) =>
    n === "pad" || n === "stats"
      ? `<storage, ${access}> ${n}: array<f32>`
      : texture && TEXTURE_OF[n]
      ? ` ${TEXTURE_OF[n]}: texture_2d<f32>`
      : `<storage, ${access}> ${n}: array<vec4<f32>>`;
  const lines = [...reads.map((n) => decl(n, "read")), ...writes.map((n) => decl(n, "read_write"))]
    .map((d, i) => `@group(0) @binding(${i + 1}) var${d};`).join("\n");
  return !texture ? lines : `${lines}
/** row t of head bh (see above): its first texel within its line, and the line */
fn rowLine(L: u32, bh: u32, t: u32) -> vec2<u32> {
  let r = (bh / param(3)) * param(L + 1u) + (bh % param(3)) * param(L + 2u) + t * param(L + 3u);
  return vec2<u32>(r % param(L + 3u) / 4u, r / param(L + 3u));
}
/** the operand's fold: (lines per texture row - 1, texels per line, log2 of lines per texture row) */
fn fold(L: u32) -> vec3<u32> { return vec3<u32>((1u << param(L)) - 1u, param(L + 3u) / 4u, param(L)); }
/** the texel of texel x of line l (p = (x, l)) */
fn folded(L: u32, p: vec2<u32>) -> vec2<u32> {
  let f = fold(L);
  return vec2<u32>(p.x + (p.y & f.x) * f.y, p.y >> f.z);
}`;
}

/**
 * The forward for R query rows per thread (`texture`: the texture form), C keys a step: one
 * rescale of the R x D/4 accumulators per C keys.
 */
function attentionBlockSource(
  D: number,
  { rows: R, texture = false, step: C = 1, group }: AttentionBlock,
): string {
  const rs = rows(texture);
  const keys = range(C);
  return /* wgsl */ `
${bindings(texture, "forward")}
${COMMON}
${main(group)}
${QUERY_BLOCK(R, rs)}
${rs.setup}
${loadRows(rs, "q", "q", (r) => `qr${r}`, R, D, " * scale").join("\n")}
${range(R).flatMap((r) => range(D / 4).map((c) => `  var o${r}_${c} = vec4<f32>(0.0);`)).join("\n")}
${range(R).map((r) => `  var m${r} = ${NEG_INF}; var l${r} = 0.0;`).join("\n")}
  for (var j = 0u; j < jEnd; j += ${C}u) {
${keyStep(C, D, rs, ["k"])}
${
    range(R).map((r) =>
      `${
        keys.map((s) =>
          `    let s${r}x${s} = ${
            dotRow(`q${r}`, `k${s}_`, D)
          }; let vis${r}x${s} = in${s} && shown${s} && causalShown(row0 + ${r}u, jj${s});`
        ).join("\n")
      }
    let any${r} = ${keys.map((s) => `vis${r}x${s}`).join(" || ")};
    let m${r}New = select(m${r}, max(m${r}, ${
        keys.map((s) => `select(${NEG_INF}, s${r}x${s}, vis${r}x${s})`).reduce((a, b) => `max(${a}, ${b})`)
      }), any${r});
    let corr${r} = select(1.0, exp(m${r} - m${r}New), any${r});
${keys.map((s) => `    let p${r}x${s} = select(0.0, exp(s${r}x${s} - m${r}New), vis${r}x${s});`).join("\n")}
    l${r} = l${r} * corr${r} + ${keys.map((s) => `p${r}x${s}`).join(" + ")}; m${r} = m${r}New;`
    ).join("\n")
  }
${
    keys.flatMap((s) => range(D / 4).map((c) => `    let v${s}_${c} = ${rs.load("v", `vr${s}`, c)};`)).join(
      "\n",
    )
  }
${
    range(R).flatMap((r) =>
      range(D / 4).map((c) =>
        `    o${r}_${c} = ${
          keys.reduce((a, s) => `fma(vec4<f32>(p${r}x${s}), v${s}_${c}, ${a})`, `o${r}_${c} * corr${r}`)
        };`
      )
    ).join("\n")
  }
  }
${
    range(R).map((r) =>
      `  if (row0 + ${r}u < Tq) {
    let inv = select(0.0, 1.0 / l${r}, l${r} > 0.0); let orow = row4(OL, bh, t${r});
${range(D / 4).map((c) => `    o[orow + ${c}u] = o${r}_${c} * inv;`).join("\n")}
    stats[2u * sr${r}] = m${r} + log(l${r});
  }`
    ).join("\n")
  }
}`;
}

export const attentionBlockWGSL = memoWGSL(attentionBlockSource);

/** The backward passes' bindings and helpers, up to the thread's flat index. */
const backwardHead = (texture: boolean, pass: AttentionPass, group?: number) => /* wgsl */ `
${bindings(texture, pass)}
${COMMON}
${main(group)}`;

/**
 * D_i = dO_i . O_i (into the statistics, for the dK/dV pass), then dQ, for R query rows per thread,
 * C keys a step: the R x D/4 accumulators are loaded and stored once per C keys.
 */
function attentionBlockGradQSource(
  D: number,
  { rows: R, texture = false, step: C = 1, group }: AttentionBlock,
): string {
  const rs = rows(texture);
  const keys = range(C);
  return /* wgsl */ `
${backwardHead(texture, "dq", group)}
${QUERY_BLOCK(R, rs)}
${rs.setup}
${loadRows(rs, "q", "q", (r) => `qr${r}`, R, D, " * scale").join("\n")}
${loadRows(rs, "g", "dO", (r) => rs.at("GL", `t${r}`), R, D).join("\n")}
${
    range(R).map((r) =>
      `  let lse${r} = stats[2u * sr${r}]; let fr${r} = row4(FL, bh, t${r});
  let di${r} = ${range(D / 4).map((c) => `dot(g${r}_${c}, o[fr${r} + ${c}u])`).join(" + ")};`
    ).join("\n")
  }
${range(R).flatMap((r) => range(D / 4).map((c) => `  var dq${r}_${c} = vec4<f32>(0.0);`)).join("\n")}
  for (var j = 0u; j < jEnd; j += ${C}u) {
${keyStep(C, D, rs, ["k", "v"])}
${
    range(R).flatMap((r) =>
      keys.map((s) =>
        `    let ds${r}x${s} = select(0.0, exp(${dotRow(`q${r}`, `k${s}_`, D)} - lse${r}) * (${
          dotRow(`g${r}`, `v${s}_`, D)
        } - di${r}),
                      in${s} && shown${s} && causalShown(row0 + ${r}u, jj${s}));`
      )
    ).join("\n")
  }
${
    range(R).flatMap((r) =>
      range(D / 4).map((c) =>
        `    dq${r}_${c} = ${
          keys.reduce((a, s) => `fma(vec4<f32>(ds${r}x${s}), k${s}_${c}, ${a})`, `dq${r}_${c}`)
        };`
      )
    ).join("\n")
  }
  }
${
    range(R).map((r) =>
      `  if (row0 + ${r}u < Tq) {
    let at = row4(OL, bh, t${r}); stats[2u * sr${r} + 1u] = di${r};
${range(D / 4).map((c) => `    out[at + ${c}u] = dq${r}_${c} * scale;`).join("\n")}
  }`
    ).join("\n")
  }
}`;
}

export const attentionBlockGradQWGSL = memoWGSL(attentionBlockGradQSource);

/**
 * dK and dV for R key rows per thread, into one buffer (dV at dK's place + params[27]), C queries
 * a step: the R x D/4 accumulators, too many for registers, are loaded and stored once per C
 * queries instead of once per query.
 */
function attentionBlockGradKVSource(
  D: number,
  { rows: R, texture = false, step: C = 1, group }: AttentionBlock,
): string {
  const rs = rows(texture);
  return /* wgsl */ `
${backwardHead(texture, "dkv", group)}
  let Tq = param(1); let Tk = param(2);
  let blocks = (Tk + ${R - 1}u) / ${R}u;
  if (i >= param(0) * blocks) { return; }
  let hb = headBlock(i, blocks); let bh = hb.x; let jb = hb.y * ${R}u;
  let scale = bitcast<f32>(param(4));
${rs.setup}
${
    range(R).map((r) =>
      `  let t${r} = min(jb + ${r}u, Tk - 1u); let kr${r} = ${rs.at("KL", `t${r}`)}; let vr${r} = ${
        rs.at("VL", `t${r}`)
      };`
    ).join("\n")
  }
${
    range(R).flatMap((r) =>
      range(D / 4).map((c) =>
        `  let k${r}_${c} = ${rs.load("k", `kr${r}`, c)} * scale; let v${r}_${c} = ${
          rs.load("v", `vr${r}`, c)
        };`
      )
    ).join("\n")
  }
${
    range(R).map((r) => `  let shown${r} = jb + ${r}u < Tk && keyShown(bh, min(jb + ${r}u, Tk - 1u));`)
      .join("\n")
  }
${
    range(R).flatMap((r) =>
      range(D / 4).map((c) => `  var dk${r}_${c} = vec4<f32>(0.0); var dv${r}_${c} = vec4<f32>(0.0);`)
    )
      .join("\n")
  }
  // under the causal mask no query before the block's first key's first viewer sees any of its keys
  let iStart = select(0u, u32(max(i32(jb + Tq) - i32(Tk), 0)), param(5) != 0u);
  for (var r = iStart; r < Tq; r += ${C}u) {
${
    range(C).map((s) =>
      `    let rr${s} = min(r + ${s}u, Tq - 1u); let si${s} = bh * Tq + rr${s}; ${
        rs.step(`qi${s}`, "QL", `rr${s}`)
      } ${rs.step(`gi${s}`, "GL", `rr${s}`)}
    let lse${s} = stats[2u * si${s}]; let di${s} = stats[2u * si${s} + 1u]; let in${s} = r + ${s}u < Tq;
${
        range(D / 4).map((c) =>
          `    let q${s}_${c} = ${rs.load("q", `qi${s}`, c)}; let g${s}_${c} = ${rs.load("dO", `gi${s}`, c)};`
        ).join("\n")
      }`
    ).join("\n")
  }
${
    range(R).flatMap((r) =>
      range(C).map((s) =>
        `    let p${r}x${s} = select(0.0, exp(${
          dotRow(`k${r}`, `q${s}_`, D)
        } - lse${s}), in${s} && shown${r} && causalShown(rr${s}, jb + ${r}u));
    let ds${r}x${s} = p${r}x${s} * (${dotRow(`v${r}`, `g${s}_`, D)} - di${s});`
      )
    ).join("\n")
  }
${
    range(R).flatMap((r) =>
      range(D / 4).map((c) => {
        const chain = (acc: string, w: string, x: string) =>
          range(C).reduce((a, s) => `fma(vec4<f32>(${w}${r}x${s}), ${x}${s}_${c}, ${a})`, acc);
        return `    dv${r}_${c} = ${chain(`dv${r}_${c}`, "p", "g")}; dk${r}_${c} = ${
          chain(`dk${r}_${c}`, "ds", "q")
        };`;
      })
    ).join("\n")
  }
  }
  let dV = param(${LAYOUT.dV}) / 4u;
${
    range(R).map((r) =>
      `  if (jb + ${r}u < Tk) {
    let at = row4(OL, bh, t${r});
${
        range(D / 4).map((c) =>
          `    out[at + ${c}u] = dk${r}_${c} * scale; out[dV + at + ${c}u] = dv${r}_${c};`
        )
          .join("\n")
      }
  }`
    ).join("\n")
  }
}`;
}

export const attentionBlockGradKVWGSL = memoWGSL(attentionBlockGradKVSource);
