// matmul through textures: out[b, m, n] = sum_k A[b, m, k] * B[b, k, n], with both operands first
// packed into rgba32float textures, where the CPU adapter reads them far faster than from storage
// buffers (the packing: kernels/texture_pack.ts).
//
// Why: llvmpipe (Mesa 22's gallivm) loads from a storage buffer in a loop over the 8 SIMD lanes
// with a bounds check each, one component at a time; a texel fetch is a vectorised gather. Measured
// on a 2-core host: 0.26 G floats/s from storage against 1.8-2.6 from a texture (vec4 loads either
// way), and 1024^3 through this kernel in 223 ms, packing included, against 376 ms for the best
// kernel reading storage buffers (the tuner's timings, bench/RESULTS.md step 56). Packing costs one
// storage read per operand element; the product then reads each element M / tm (B) or N / 4 tnv
// (A) times from the texture.
//
// Layouts (texel = 4 floats):
//   A texture  [batch * M rows, K4 texels]      texel (j, b M + m)      = A[b, m, 4j .. 4j + 3]
//   B texture  [batch * 4 K4 rows, N4 texels]   texel (c, b 4 K4 + k)   = B[b, k, 4c .. 4c + 3]
// with K4 = ceil(K / 4), N4 = N / 4, and zeros past K in both, so the k loop needs no edge. Where
// A is read transposed (`aT`: A = X^T, X [K, M] rows in memory, as in a weight gradient dW = X^T
// dY), its texture is laid out as B's, X's rows as they are (M a multiple of 4):
//   A texture  [batch * 4 K4 rows, M4 texels]   texel (c, b 4 K4 + k)   = A[b, 4c .. 4c + 3, k]
// and a k step loads tm / 4 texels of each of 4 rows, the same tm fetches as from the other. Each
// may be folded, F rows to a texture row (tensor/ops/texture.ts, fold: rows shorter than a copy's
// 256-byte pitch): row g at texel (c + (g % F) W, g / F). A's rows are fixed per thread, so its
// fold costs one add per fetch; B's fold divides 4, so row 4k + q of a batch lies at texture row
// (base + q) / F + k 4 / F, texel offset (q % F) N4.
// Tiling: 8 x 8 threads per workgroup, each tm rows x tnv texels (4 tnv columns) of out, k in steps
// of 4: tm texels of A and 4 tnv of B per step for 4 tm tnv vec4 fmas. The 8 SIMD lanes (lid.x)
// take consecutive column blocks; workgroups step through M first (B's texels stay in cache).
// The tm tnv accumulators are more than a CPU's 16 vector registers, so llvmpipe keeps them in
// memory; each takes its step's 4 k terms as one chain of fmas, and goes there and back once a step
// instead of 4 times: 18-30% faster than k-major order (bench/RESULTS.md step 89).

import { memoWGSL, PARAMS } from "./common.ts";

/** The product's block per thread: `tm` rows x `tnv` texels (4 tnv columns) of out. */
export interface TextureBlock {
  tm: number;
  tnv: number;
}

/**
 * params: [batches, M, N, K, A's fold, B's fold]; out is [batch, M, N] contiguous, N a multiple of
 * 4 (and M with `aT`).
 */
function matmulTextureSource({ tm, tnv }: TextureBlock, aT = false): string {
  const I = [...Array(tm).keys()],
    J = [...Array(tnv).keys()],
    Q = [0, 1, 2, 3],
    I4 = [...Array(tm / 4).keys()];
  // A's rows: tm texel rows of A (a{i}), or for aT tm / 4 texel columns of 4 rows of A^T (a{q}_{i4})
  const aSetup = aT
    ? [
      `  let M4 = M / 4u; let aStep = 4u / FA;`,
      ...I4.map((i4) => `  let ac${i4} = min(m0 / 4u + ${i4}u, M4 - 1u);`),
      ...Q.map((q) => `  let ax${q} = (${q}u % FA) * M4; let ay${q} = (bRow + ${q}u) / FA;`),
    ]
    : I.map((i) =>
      `  let ar${i} = bt * M + min(m0 + ${i}u, M - 1u); let ax${i} = (ar${i} % FA) * K4; let ay${i} = ar${i} / FA;`
    );
  const aLoads = aT
    ? [
      `    let ka = k * aStep;`,
      ...Q.flatMap((q) =>
        I4.map((i4) => `    let a${q}_${i4} = textureLoad(A, vec2<u32>(ax${q} + ac${i4}, ay${q} + ka), 0);`)
      ),
    ]
    : I.map((i) => `    let a${i} = textureLoad(A, vec2<u32>(ax${i} + k, ay${i}), 0);`);
  const aAt = (i: number, q: number) => (aT ? `a${q}_${i >> 2}[${i & 3}]` : `a${i}[${q}]`);
  const acc = I.flatMap((i) => J.map((j) => `c${i}_${j}`));
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var A: texture_2d<f32>;
@group(0) @binding(2) var B: texture_2d<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = param(1); let N4 = param(2) / 4u; let K4 = (param(3) + 3u) / 4u;
  let bt = wid.z;
  let m0 = (wid.x * 8u + lid.y) * ${tm}u; let n4 = (wid.y * 8u + lid.x) * ${tnv}u;
  if (m0 >= M || n4 >= N4) { return; }
  let FA = param(4); let FB = param(5); let bRow = bt * 4u * K4;
${aSetup.join("\n")}
${J.map((j) => `  let bc${j} = min(n4 + ${j}u, N4 - 1u);`).join("\n")}
  let bStep = 4u / FB;
${Q.map((q) => `  let bx${q} = (${q}u % FB) * N4; let by${q} = (bRow + ${q}u) / FB;`).join("\n")}
${acc.map((c) => `  var ${c} = vec4<f32>(0.0);`).join("\n")}
  for (var k = 0u; k < K4; k = k + 1u) {
    let kb = k * bStep;
${aLoads.join("\n")}
${
    [
      ...Q.flatMap((q) =>
        J.map((j) => `    let b${q}_${j} = textureLoad(B, vec2<u32>(bx${q} + bc${j}, by${q} + kb), 0);`)
      ),
      ...I.flatMap((i) =>
        J.map((j) =>
          `    c${i}_${j} = ${
            Q.reduce((a, q) => `fma(vec4<f32>(${aAt(i, q)}), b${q}_${j}, ${a})`, `c${i}_${j}`)
          };`
        )
      ),
    ].join("\n")
  }
  }
${
    I.flatMap((i) =>
      J.map((j) =>
        `  if (m0 + ${i}u < M && n4 + ${j}u < N4) { out[(bt * M + m0 + ${i}u) * N4 + n4 + ${j}u] = c${i}_${j}; }`
      )
    ).join("\n")
  }
}`;
}

export const matmulTextureWGSL = memoWGSL(matmulTextureSource);

/** Workgroups of the texture kernel: 8 x 8 threads, each a tm x 4 tnv block; z runs over batches. */
export const matmulTextureGrid = (nb: number, M: number, N: number, { tm, tnv }: TextureBlock): [
  number,
  number,
  number,
] => [Math.ceil(M / (tm * 8)), Math.ceil(N / (32 * tnv)), nb];
