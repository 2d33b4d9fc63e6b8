// matmul, workgroup-tiled through shared memory: the variant for real GPUs.
//   out[b, m, n] = sum_k A[b, m, k] * B[b, k, n], operands strided as in kernels/matmul.ts (same params).
//
// Tiling (16 x 16 = 256 threads per workgroup):
//   - the workgroup owns a BM x BN tile of C, BM = 16 * TM, BN = 16 * TN;
//   - per step of BK along k, the threads copy A's BM x BK and B's BK x BN slabs into workgroup
//     memory, both k-major (As[k][m], Bs[k][n]), so the inner loop reads rows of both as vec4s;
//   - each thread accumulates TM x TN outputs in registers: rows ty*4 + 64*h + (0..3) and columns
//     tx*4 + 64*h + (0..3). Interleaving the 4-wide groups 64 apart (rather than giving a thread
//     TM consecutive rows) keeps a warp's vec4 reads of workgroup memory on distinct banks.
// Per k step a thread does TM * TN fmas for TM/4 + TN/4 vec4 reads of workgroup memory; global
// memory is read once per workgroup per slab, by consecutive threads along the operand's
// contiguous dim (`layout`), so the loads coalesce whatever the transposes. The next slab is
// fetched into registers before the current one is multiplied (register double-buffering), so its
// global-memory latency hides behind the fmas; each thread's slab addresses are computed once.
// Edges: rows and columns past M / N are clamped on load and skipped on store; k past K loads 0.
// CPU adapters gain nothing from workgroup memory (1.6 GFLOPS measured on llvmpipe against 12-14
// for the register-blocked vec4 kernel), so the tuner only tries this variant on real GPUs.
// The loop (`tiledGemmWGSL`) takes its operands as sources, like kernels/gemm.ts: conv2d's
// implicit GEMMs (kernels/conv2d_tiled.ts) run through the same code.

import { memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";

export interface TiledConfig {
  /** rows / columns of C per thread: 4 or 8 */
  tm: number;
  tn: number;
  /** k per slab */
  bk: number;
}

/** Which dim of an operand is contiguous: A is [M, K] ("k": row-major), B is [K, N] ("n": row-major). */
export type TiledLayout = { a: "k" | "m"; b: "n" | "k" };

const range = (n: number) => [...Array(n).keys()];

/**
 * Workgroup memory the loop below takes: both slabs, rows padded by one vec4. WebGPU guarantees
 * 16 KiB; a larger slab runs only where the device grants more (the ops' `fits` check it).
 */
export const tiledBytes = ({ tm, tn, bk }: TiledConfig): number => 4 * bk * (16 * tm + 4 + 16 * tn + 4);

/**
 * What the tiled loop below reads and writes: matmul's strided operands here, conv2d's implicit
 * GEMMs in kernels/conv2d_tiled.ts. Slab element e of thread t is L = e * 256 + t of the slab
 * (`slabIndex`); `setup` places it in workgroup memory and fixes what its fetches need.
 */
export interface TiledSource {
  /** what the error for too much workgroup memory names */
  name: string;
  /** bindings and helpers, from binding 0 on */
  decls: string;
  /**
   * main's first statements: M, N, K, bt (store's first argument), mTile, nTile, and for each slab
   * element its row (ar{e}, br{e}) and slot (as{e} = k * (BM + 4) + row, bs{e} likewise)
   */
  setup: string;
  /** the workgroup's k range, [first, end): k0 steps through it by BK */
  k: [string, string];
  /** statement setting register pa{e} (pb{e}) to A's (B's) element e of the slab at k0: 0 past the k range */
  fetchA: (e: number) => string;
  fetchB: (e: number) => string;
  /** `fn store(bt, m, n, M, N, v: vec4<f32>)`: C[m, n .. n + 3] = v, skipping m >= M and n + j >= N */
  storeFn: string;
}

/** Slab element e's k and row, `fast` the dim consecutive threads take (the operand's contiguous one). */
export function slabIndex(e: number, bk: number, fast: "k" | "mn", rows: number): { k: string; r: string } {
  const ix = fast === "k" ? { k: `L % ${bk}u`, r: `L / ${bk}u` } : { k: `L / ${rows}u`, r: `L % ${rows}u` };
  const L = `(${e * 256}u + t)`;
  return { k: ix.k.replaceAll("L", L), r: ix.r.replaceAll("L", L) };
}

/** The workgroup-tiled loop (see the header) over any source; `maxBytes`: the device's workgroup memory. */
export function tiledGemmWGSL({ tm, tn, bk }: TiledConfig, src: TiledSource, maxBytes = 16384): string {
  const BM = 16 * tm, BN = 16 * tn;
  // workgroup rows are padded by one vec4: k-fast slab stores (8 threads, 8 k, one row) then fall
  // on distinct banks instead of one
  const PM = BM + 4, PN = BN + 4;
  // too much workgroup memory fails pipeline creation, on some devices silently
  if (tiledBytes({ tm, tn, bk }) > maxBytes) {
    throw new Error(
      `${src.name} tiled ${tm}x${tn} bk ${bk}: over the device's ${maxBytes} bytes of workgroup memory`,
    );
  }
  const EA = range((BM * bk) / 256), EB = range((BN * bk) / 256);
  const H = range(tm / 4), G = range(tn / 4);
  return /* wgsl */ `
${src.decls}
var<workgroup> As: array<vec4<f32>, ${(bk * PM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * PN) / 4}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
${src.setup}
${
    H.flatMap((h) => G.flatMap((g) => range(4).map((i) => `  var c${h}_${g}_${i} = vec4<f32>(0.0);`))).join(
      "\n",
    )
  }
  // the first slab, fetched into registers
  var k0 = ${src.k[0]};
${EA.map((e) => `  var ${src.fetchA(e)}`).join("\n")}
${EB.map((e) => `  var ${src.fetchB(e)}`).join("\n")}
  for (; k0 < ${src.k[1]}; ) {
${EA.map((e) => `    As[as${e} / 4u][ar${e} % 4u] = pa${e};`).join("\n")}
${EB.map((e) => `    Bs[bs${e} / 4u][br${e} % 4u] = pb${e};`).join("\n")}
    workgroupBarrier();
    // fetch the next slab now: its global loads are in flight while this one is multiplied
    k0 = k0 + ${bk}u;
${EA.map((e) => `    ${src.fetchA(e)}`).join("\n")}
${EB.map((e) => `    ${src.fetchB(e)}`).join("\n")}
    for (var k = 0u; k < ${bk}u; k = k + 1u) {
${H.map((h) => `      let a${h} = As[k * ${PM / 4}u + lid.y + ${16 * h}u];`).join("\n")}
${G.map((g) => `      let b${g} = Bs[k * ${PN / 4}u + lid.x + ${16 * g}u];`).join("\n")}
${
    H.flatMap((h) =>
      G.flatMap((g) =>
        range(4).map((i) => `      c${h}_${g}_${i} = fma(vec4<f32>(a${h}[${i}]), b${g}, c${h}_${g}_${i});`)
      )
    ).join("\n")
  }
    }
    workgroupBarrier();
  }
${
    H.flatMap((h) =>
      G.flatMap((g) =>
        range(4).map((i) =>
          `  store(bt, mTile + lid.y * 4u + ${64 * h + i}u, nTile + lid.x * 4u + ${
            64 * g
          }u, M, N, c${h}_${g}_${i});`
        )
      )
    ).join("\n")
  }
}
${src.storeFn}`;
}

function matmulTiledSource({ tm, tn, bk }: TiledConfig, layout: TiledLayout, maxBytes = 16384): string {
  const BM = 16 * tm, BN = 16 * tn;
  const EA = range((BM * bk) / 256), EB = range((BN * bk) / 256);
  // where each of the thread's slab elements comes from (row / column offset, k) and goes to
  const source = (x: "a" | "b", e: number, rows: number, base: string) => {
    const ix = slabIndex(e, bk, layout[x] === "k" ? "k" : "mn", rows);
    return `  let ${x}k${e} = ${ix.k}; let ${x}r${e} = ${ix.r};
  let ${x}o${e} = ${base}; let ${x}s${e} = ${x}k${e} * ${rows + 4}u + ${x}r${e};`;
  };
  return tiledGemmWGSL({ tm, tn, bk }, {
    name: "matmul",
    decls: `${PARAMS}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b_: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${VIEW_OFFSET}`,
    setup: `  let M = param(1); let N = param(2); let K = param(3);
  let bt = wid.z;
  let mTile = wid.x * ${BM}u; let nTile = wid.y * ${BN}u;
  let aBase = view_offset(bt, 4u, 13u); let bBase = view_offset(bt, 4u, 24u);
  let sam = param(22); let sak = param(23); let sbk = param(33); let sbn = param(34);
${EA.map((e) => source("a", e, BM, `aBase + min(mTile + ar${e}, M - 1u) * sam`)).join("\n")}
${EB.map((e) => source("b", e, BN, `bBase + min(nTile + br${e}, N - 1u) * sbn`)).join("\n")}`,
    k: ["0u", "K"],
    fetchA: (e) => `pa${e} = select(0.0, a[ao${e} + min(k0 + ak${e}, K - 1u) * sak], k0 + ak${e} < K);`,
    fetchB: (e) => `pb${e} = select(0.0, b_[bo${e} + min(k0 + bk${e}, K - 1u) * sbk], k0 + bk${e} < K);`,
    storeFn: `
fn store(bt: u32, m: u32, n: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let row = (bt * M + m) * N;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (n + j < N) { out[row + n + j] = v[j]; }
  }
}`,
  }, maxBytes);
}

export const matmulTiledWGSL = memoWGSL(matmulTiledSource);

export function matmulTiledGrid(
  batches: number,
  M: number,
  N: number,
  c: TiledConfig,
): [number, number, number] {
  return [Math.ceil(M / (16 * c.tm)), Math.ceil(N / (16 * c.tn)), batches];
}
