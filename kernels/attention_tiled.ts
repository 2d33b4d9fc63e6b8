// Fused attention, workgroup-tiled (FlashAttention-style): the variant for real GPUs. The same
// three products as kernels/attention.ts with the same parameters (`params`, LAYOUT: any offset and
// b / h / t strides per operand), masks (causal end-aligned, key padding), row statistics
// ([BH * Tq, 2]: lse, then D) and outputs (o + lse; dQ; dK with dV at dK's place + params[27]), so
// the op only swaps the code and the grid.
//
//   forward  workgroup = (bh, block of query rows):  walks K/V tiles, online softmax, o and lse
//   dQ       workgroup = (bh, block of query rows):  D = dO . O, walks K/V tiles, P from lse, dS with D
//   dK, dV   workgroup = (bh, block of key rows):    walks Q/dO tiles, P and dS from lse and D
//
// Tiling: 64 threads per workgroup, `split` threads per owned row, tiles of `bc` rows.
//   - The workgroup owns 64 / split rows. Thread t takes row t % (64 / split) and the
//     (t / (64 / split))-th D / split columns of it: that row's operands and accumulators live in
//     its registers (forward q, o; dQ q, dO, dQ; dK/dV k, v, dK, dV), as vec4s where D / split
//     allows. The row kernel's thread reads every key from global memory itself; here the
//     workgroup reads each once for all its rows.
//   - Per step the 64 threads copy the other side's next bc rows (K and V, or Q and dO) into
//     workgroup memory, consecutive threads on consecutive floats of a row (rows are D contiguous
//     floats, so the copies coalesce whatever the strides), then each thread walks the tile's
//     rows. All threads with the same column share read one address at once (a broadcast, free of
//     bank conflicts); the shares are t / (64 / split), so a 32-wide warp reads one address.
//   - split 1: a thread computes its dot products alone. split 2: it writes its partial dot
//     products for the whole tile to workgroup memory (`part`, a vector per tile row and owned
//     row: component dot * 2 + half), and after a barrier both threads of a row read that vector
//     and add the same partials in the same order, so they agree on m, l and P. This halves the
//     registers, which the backward needs (3 or 4 head-sized rows: 192 or 256 floats at D = 64
//     with split 1, at or past the 255 registers an NVIDIA thread has), for one more barrier per
//     tile.
//   - Per-key and per-query scalars (padding mask, lse, D) are read from global memory at one
//     address for every thread (a broadcast) rather than staged: at D = 64 the 32-row tiles take
//     all of the 16 KiB.
// Causal tile skipping: a query block stops at its last row's last visible key; a key block starts
// at its first key's first viewer. Key padding is applied per key (a hidden tile is still walked).
// Workgroup memory (WebGPU guarantees 16 KiB; more fails pipeline creation on some devices):
//   4 * (2 * bc * D + (split > 1 ? dots * 64 * bc : 0)) bytes, dots 1 (forward) or 2 (s and dP):
//     bc 32, split 1:  256 D                      (16 KiB at D = 64, every pass)
//     bc 16, split 2:  128 D + 4 KiB (forward), 128 D + 8 KiB (dQ, dK/dV)  (12 / 16 KiB at D = 64)
//   `attentionTiledFits` rules out what does not fit, and a split that does not divide D. The
//   arrays are of vectors where they can be: Mesa's GL driver, where the tests run these kernels,
//   compiles WGSL's zero-initialisation of workgroup memory in time quadratic in its element count
//   (bench/RESULTS.md step 74).
// Barriers are in uniform control flow: the tile loop's bounds depend only on params and the
// workgroup id; rows past the end are clamped on load, take part in every copy and barrier, and
// only skip their stores. Tile rows past the end are clamped on load and masked.
// Not timed on a real GPU yet. Workgroup memory and barriers are slow on CPU adapters
// (kernels/matmul_tiled.ts), so these variants are gpuOnly: the tuner tries them only on real
// GPUs; llvmpipe runs them only in the tests.

import { backwardIO, FORWARD_IO, LAYOUT, ROW_LAYOUT } from "./attention.ts";
import { memoWGSL, PARAMS } from "./common.ts";

export interface AttentionTileConfig {
  /** rows of the other side (keys for forward / dQ, queries for dK / dV) per loaded tile */
  bc: number;
  /** threads per owned row, each holding D / split columns: 1 or 2 */
  split: number;
}

export type AttentionPass = "forward" | "dq" | "dkv";

const THREADS = 64;
const WORKGROUP_BYTES = 16384;
/** what WebGPU guarantees for maxComputeWorkgroupsPerDimension */
const MAX_GROUPS = 65535;

const range = (n: number) => [...Array(n).keys()];

/** Bytes of workgroup memory the pass uses (see the header). */
export function attentionTiledBytes(pass: AttentionPass, D: number, { bc, split }: AttentionTileConfig) {
  const dots = pass === "forward" ? 1 : 2;
  return 4 * (2 * bc * D + (split > 1 ? dots * THREADS * bc : 0));
}

export const attentionTiledFits = (pass: AttentionPass, D: number, c: AttentionTileConfig) =>
  (c.split === 1 || c.split === 2) && D % c.split === 0 && attentionTiledBytes(pass, D, c) <= WORKGROUP_BYTES;

/** One workgroup per (bh, block of owned rows), the flat index folded into y past the x limit. */
export function attentionTiledGrid(
  BH: number,
  rows: number,
  c: AttentionTileConfig,
): [number, number, number] {
  const groups = BH * Math.ceil(rows / (THREADS / c.split));
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y, 1];
}

/** The WGSL of one pass for head size D. */
function attentionTiledSource(pass: AttentionPass, D: number, c: AttentionTileConfig): string {
  if (!attentionTiledFits(pass, D, c)) {
    throw new Error(
      `attention tiled ${pass} D ${D} bc ${c.bc} split ${c.split}: ${
        attentionTiledBytes(pass, D, c)
      } bytes of workgroup memory, or split is not 1 or 2 or does not divide D`,
    );
  }
  const { bc, split: S } = c;
  const OWN = THREADS / S, DS = D / S;
  // the thread's columns and the tiles as vec4s when its share of a row allows
  const W = DS % 4 === 0 ? 4 : 1, T = W === 4 ? "vec4<f32>" : "f32";
  const NV = DS / W, RV = D / W, cols = range(NV);
  const dotv = (a: string, b: string) => (W === 4 ? `dot(${a}, ${b})` : `${a} * ${b}`);
  /** sum over the thread's columns of x{c} . tile[at + c] */
  const dotTile = (x: string, tile: string) =>
    cols.map((i) => dotv(`${x}${i}`, `${tile}[at + ${i}u]`)).join(" + ");
  /** the W floats of a global array at base + off on (global rows need not be vec4-aligned) */
  const load = (arr: string, base: string, off: number) =>
    W === 4
      ? `vec4<f32>(${range(4).map((i) => `${arr}[${base} + ${off + i}u]`).join(", ")})`
      : `${arr}[${base} + ${off}u]`;
  const store = (arr: string, base: string, off: number, x: string) =>
    W === 4
      ? `{ let x = ${x}; ${range(4).map((i) => `${arr}[${base} + ${off + i}u] = x[${i}];`).join(" ")} }`
      : `${arr}[${base} + ${off}u] = ${x};`;
  /** `let name{c} = (the thread's columns of its row in the operand at layout L) * mul` */
  const regs = (name: string, arr: string, L: string, mul = "") =>
    [
      `  let ${name}At = rowAt(${L}, bh, r) + half * ${DS}u;`,
      ...cols.map((i) => `  let ${name}${i} = ${load(arr, `${name}At`, i * W)}${mul};`),
    ].join("\n");
  const zeros = (...names: string[]) =>
    cols.map((i) => names.map((n) => `var ${n}${i} = ${T}(0.0);`).join(" ")).map((l) => `  ${l}`).join("\n");
  const tileSlot = (name: string) => (W === 4 ? `${name}[e / 4u][e % 4u]` : `${name}[e]`);
  /** the cooperative copy of `bc` rows from row `first` on (clamped to `count - 1`) into two tiles */
  const copy = (
    a: [string, string, string],
    b: [string, string, string],
    first: string,
    count: string,
  ) =>
    /* wgsl */ `    for (var e = t; e < ${bc * D}u; e += ${THREADS}u) {
      let src = min(${first} + e / D, ${count} - 1u); let col = e % D;
      ${tileSlot(a[0])} = ${a[1]}[${a[2]}b + src * ${a[2]}s + col];
      ${tileSlot(b[0])} = ${b[1]}[${b[2]}b + src * ${b[2]}s + col];
    }
    workgroupBarrier();`;
  const dots = pass === "forward" ? 1 : 2;
  /**
   * Dot products of the thread's row with each tile row: with split 1, the expressions; with
   * split 2, WGSL that stores the partials (then a barrier), and the expressions summing them
   * from `pv`, the row's vector of partials that `load` reads.
   */
  const exchange = (pairs: [string, string][]) => {
    if (S === 1) return { pre: "", load: "", sums: pairs.map(([x, tile]) => dotTile(x, tile)) };
    const pre = /* wgsl */ `
    for (var tr = 0u; tr < ${bc}u; tr++) {
      let at = tr * ${RV}u + half * ${NV}u;
${
      pairs.map(([x, tile], d) => `      part[tr * ${OWN}u + own][${d * S}u + half] = ${dotTile(x, tile)};`)
        .join("\n")
    }
    }
    workgroupBarrier();`;
    const load = `\n        let pv = part[tr * ${OWN}u + own];`;
    const sums = pairs.map((_, d) => `(pv[${d * S}] + pv[${d * S + 1}])`);
    return { pre, load, sums };
  };

  const head = /* wgsl */ `
${pass === "forward" ? FORWARD_IO : backwardIO(pass === "dq")}
${PARAMS}
const D: u32 = ${D}u;
${ROW_LAYOUT}
var<workgroup> tileA: array<${T}, ${bc * RV}>;
var<workgroup> tileB: array<${T}, ${bc * RV}>;
${S > 1 ? `var<workgroup> part: array<vec${dots * S}<f32>, ${bc * OWN}>;` : ""}
fn keyShown(bh: u32, j: u32) -> bool {
  return param(6) == 0u || pad[(bh / param(3)) * param(2) + j] == 0.0;
}
fn causalShown(i: u32, j: u32) -> bool { return param(5) == 0u || j + param(1) <= i + param(2); }

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let Tq = param(1); let Tk = param(2);
  let owned = ${pass === "dkv" ? "Tk" : "Tq"};
  let blocks = (owned + ${OWN - 1}u) / ${OWN}u;
  let w = wid.x + wid.y * nwg.x;
  // whole workgroups past the end: a uniform return
  if (w >= param(0) * blocks) { return; }
  let bh = w / blocks; let row0 = (w % blocks) * ${OWN}u;
  let own = t % ${OWN}u; let half = t / ${OWN}u;
  let row = row0 + own; let r = min(row, owned - 1u);
  let scale = bitcast<f32>(param(4));`;

  if (pass === "forward" || pass === "dq") {
    const fwd = pass === "forward";
    const ex = exchange(fwd ? [["q", "tileA"]] : [["q", "tileA"], ["g", "tileB"]]);
    const update = fwd
      ? /* wgsl */ `
        let s = ${ex.sums[0]};
        let mNew = max(m, s); let corr = exp(m - mNew); let p = exp(s - mNew);
        l = l * corr + p; m = mNew;
${cols.map((i) => `        o${i} = fma(${T}(p), tileB[at + ${i}u], o${i} * corr);`).join("\n")}`
      : /* wgsl */ `
        let ds = exp(${ex.sums[0]} - lse) * (${ex.sums[1]} - di);
${cols.map((i) => `        dq${i} = fma(${T}(ds), tileA[at + ${i}u], dq${i});`).join("\n")}`;
    return /* wgsl */ `${head}
${regs("q", "q", "QL", " * scale")}
${
      fwd
        ? `${zeros("o")}
  var m = bitcast<f32>(0xff800000u); var l = 0.0;`
        : `${regs("g", "dO", "GL")}
${zeros("dq")}
  let lse = stats[2u * (bh * Tq + r)];
  // D_i = dO_i . O_i over the whole row (with split 2 both threads of a row work it out)
  let gRow = rowAt(GL, bh, r); let fRow = rowAt(FL, bh, r);
  var di = 0.0;
  for (var c = 0u; c < D; c++) { di = fma(dO[gRow + c], o[fRow + c], di); }`
    }
  let kb = rowAt(KL, bh, 0u); let ks = param(KL + 3u); let vb = rowAt(VL, bh, 0u); let vs = param(VL + 3u);
  // under the causal mask no row of the block sees a key past its last row's last visible one
  let jEnd = select(Tk, u32(clamp(i32(min(row0 + ${OWN}u, Tq) + Tk) - i32(Tq), 0, i32(Tk))), param(5) != 0u);
  for (var j0 = 0u; j0 < jEnd; j0 += ${bc}u) {
${copy(["tileA", "k", "k"], ["tileB", "v", "v"], "j0", "Tk")}${ex.pre}
    for (var tr = 0u; tr < ${bc}u; tr++) {
      let j = j0 + tr;
      if (j < jEnd && keyShown(bh, j) && causalShown(r, j)) {
        let at = tr * ${RV}u + half * ${NV}u;${ex.load}${update}
      }
    }
    // the next copy overwrites the tiles
    workgroupBarrier();
  }
  if (row < Tq) {
    let at = rowAt(OL, bh, row) + half * ${DS}u;
${
      fwd
        ? `    let inv = select(0.0, 1.0 / l, l > 0.0);
${cols.map((i) => `    ${store("o", "at", i * W, `o${i} * inv`)}`).join("\n")}
    if (half == 0u) { stats[2u * (bh * Tq + row)] = m + log(l); }`
        : `    if (half == 0u) { stats[2u * (bh * Tq + row) + 1u] = di; }
${cols.map((i) => `    ${store("out", "at", i * W, `dq${i} * scale`)}`).join("\n")}`
    }
  }
}`;
  }

  // dK, dV: the workgroup owns key rows; the tiles are Q (tileA) and dO (tileB)
  const ex = exchange([["k", "tileA"], ["v", "tileB"]]);
  return /* wgsl */ `${head}
${regs("k", "k", "KL", " * scale")}
${regs("v", "v", "VL")}
${zeros("dk", "dv")}
  let shown = keyShown(bh, r);
  let qb = rowAt(QL, bh, 0u); let qs = param(QL + 3u); let gb = rowAt(GL, bh, 0u); let gs = param(GL + 3u);
  // under the causal mask no query before the block's first key's first viewer sees any of its keys
  let iStart = select(0u, u32(max(i32(row0 + Tq) - i32(Tk), 0)), param(5) != 0u);
  for (var i0 = iStart; i0 < Tq; i0 += ${bc}u) {
${copy(["tileA", "q", "q"], ["tileB", "dO", "g"], "i0", "Tq")}${ex.pre}
    for (var tr = 0u; tr < ${bc}u; tr++) {
      let i = i0 + tr;
      if (i < Tq && shown && causalShown(i, r)) {
        let at = tr * ${RV}u + half * ${NV}u;${ex.load}
        let si = 2u * (bh * Tq + i);
        let p = exp(${ex.sums[0]} - stats[si]);
        let ds = p * (${ex.sums[1]} - stats[si + 1u]);
${
    cols.map((i) =>
      `        dv${i} = fma(${T}(p), tileB[at + ${i}u], dv${i}); dk${i} = fma(${T}(ds), tileA[at + ${i}u], dk${i});`
    ).join("\n")
  }
      }
    }
    // the next copy overwrites the tiles
    workgroupBarrier();
  }
  if (row < Tk) {
    let at = rowAt(OL, bh, row) + half * ${DS}u; let dV = param(${LAYOUT.dV}) + at;
${
    cols.map((i) =>
      `    ${store("out", "at", i * W, `dk${i} * scale`)} ${store("out", "dV", i * W, `dv${i}`)}`
    ).join("\n")
  }
  }
}`;
}

export const attentionTiledWGSL = memoWGSL(attentionTiledSource);
