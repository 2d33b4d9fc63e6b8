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
// contiguous dim (`layout`), so the loads coalesce whatever the transposes.
// Edges: rows and columns past M / N are clamped on load and skipped on store; k past K loads 0.
// CPU adapters gain nothing from workgroup memory (1.6 GFLOPS measured on llvmpipe against 12-14
// for the register-blocked vec4 kernel), so the tuner only tries this variant on real GPUs.

import { PARAMS, VIEW_OFFSET } from "./common.ts";

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

export function matmulTiledWGSL({ tm, tn, bk }: TiledConfig, layout: TiledLayout): string {
  const BM = 16 * tm, BN = 16 * tn;
  const loadsA = (BM * bk) / 256, loadsB = (BN * bk) / 256;
  // Slab element e of thread t is L = e * 256 + t; the operand's contiguous dim varies fastest in L.
  const slab = (fast: "k" | "mn", rows: number) =>
    fast === "k" ? { k: `L % ${bk}u`, r: `L / ${bk}u` } : { k: `L / ${rows}u`, r: `L % ${rows}u` };
  const ia = slab(layout.a === "k" ? "k" : "mn", BM), ib = slab(layout.b === "k" ? "k" : "mn", BN);
  const H = range(tm / 4), G = range(tn / 4);
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b_: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${VIEW_OFFSET}
var<workgroup> As: array<vec4<f32>, ${(bk * BM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * BN) / 4}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  let M = params[1]; let N = params[2]; let K = params[3];
  let bt = wid.z;
  let mTile = wid.x * ${BM}u; let nTile = wid.y * ${BN}u;
  let aBase = view_offset(bt, 4u, 13u); let bBase = view_offset(bt, 4u, 24u);
  let sam = params[22]; let sak = params[23]; let sbk = params[33]; let sbn = params[34];
${
    H.flatMap((h) => G.map((g) => range(4).map((i) => `  var c${h}_${g}_${i} = vec4<f32>(0.0);`).join("\n")))
      .join("\n")
  }
  for (var k0 = 0u; k0 < K; k0 = k0 + ${bk}u) {
${
    range(loadsA).map((e) =>
      `    { let L = ${e * 256}u + t; let k = ${ia.k}; let r = ${ia.r};
      let m = min(mTile + r, M - 1u);
      As[(k * ${BM}u + r) / 4u][r % 4u] = select(0.0, a[aBase + m * sam + (k0 + k) * sak], k0 + k < K); }`
    ).join("\n")
  }
${
    range(loadsB).map((e) =>
      `    { let L = ${e * 256}u + t; let k = ${ib.k}; let r = ${ib.r};
      let n = min(nTile + r, N - 1u);
      Bs[(k * ${BN}u + r) / 4u][r % 4u] = select(0.0, b_[bBase + (k0 + k) * sbk + n * sbn], k0 + k < K); }`
    ).join("\n")
  }
    workgroupBarrier();
    for (var k = 0u; k < ${bk}u; k = k + 1u) {
${H.map((h) => `      let a${h} = As[k * ${BM / 4}u + lid.y + ${16 * h}u];`).join("\n")}
${G.map((g) => `      let b${g} = Bs[k * ${BN / 4}u + lid.x + ${16 * g}u];`).join("\n")}
${
    H.flatMap((h) =>
      G.flatMap((g) =>
        range(4).map((i) => `      c${h}_${g}_${i} = fma(vec4<f32>(a${h}[${i}]), b${g}, c${h}_${g}_${i});`)
      )
    )
      .join("\n")
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

fn store(bt: u32, m: u32, n: u32, M: u32, N: u32, v: vec4<f32>) {
  if (m >= M) { return; }
  let row = (bt * M + m) * N;
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (n + j < N) { out[row + n + j] = v[j]; }
  }
}`;
}

export function matmulTiledGrid(
  batches: number,
  M: number,
  N: number,
  c: TiledConfig,
): [number, number, number] {
  return [Math.ceil(M / (16 * c.tm)), Math.ceil(N / (16 * c.tn)), batches];
}
