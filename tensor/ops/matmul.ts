// Batched matrix product with NumPy semantics: 1-D operands are promoted (and the added dim
// removed), batch dims broadcast, transposed operands are read in place through their strides.

import { shapeWords, viewWords } from "../../kernels/common.ts";
import {
  matmulBlockedWGSL,
  matmulNaiveWGSL,
  matmulVec4Grid,
  matmulVec4WGSL,
  type Vec4Layout,
} from "../../kernels/matmul.ts";
import { gemmGrid, splitSumWGSL } from "../../kernels/gemm.ts";
import { matmulTiledGrid, matmulTiledWGSL, tiledBytes } from "../../kernels/matmul_tiled.ts";
import { matmulTextureGrid, matmulTextureWGSL } from "../../kernels/matmul_texture.ts";
import { runVariant, type Variant } from "../webgpu/variants.ts";
import { fold, packTexture, textureFits } from "./texture.ts";
import type { Dispatch } from "../webgpu/runtime.ts";
import { gpu } from "../storage.ts";
import { empty } from "../create.ts";
import { broadcastShapes, numel } from "../shape.ts";
import { forEachOffset } from "../strided.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { broadcastStrides } from "./elementwise.ts";
import { reshape, squeeze, transpose, unsqueeze } from "./movement.ts";
import { register } from "./registry.ts";
import { sumTo } from "./reduce.ts";

register("matmul");

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error("matmul needs at least 1-d operands");
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, -1)), -1);
  if (a.device !== b.device || a.dtype !== b.dtype) {
    throw new Error("matmul operands differ in device or dtype");
  }
  const [M, K] = a.shape.slice(-2), [K2, N] = b.shape.slice(-2);
  if (K !== K2) throw new Error(`matmul: [${a.shape}] @ [${b.shape}]: inner dims ${K} and ${K2} differ`);
  // [..., M, K] @ [K, N]: fold the batch into rows, so the weight's gradient is one GEMM rather
  // than a batch of them summed afterwards.
  if (b.ndim === 2 && a.ndim > 2) {
    return reshape(matmul(reshape(a, [-1, K]), b), [...a.shape.slice(0, -1), N]);
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const out = empty([...batch, M, N], { device: a.device, dtype: a.dtype });
  const batchView = (t: Tensor) => ({
    offset: t.offset,
    strides: broadcastStrides(t, [...batch, ...t.shape.slice(-2)]).slice(0, -2),
  });
  const [av, bv] = [batchView(a), batchView(b)];
  const [sam, sak] = a.strides.slice(-2), [sbk, sbn] = b.strides.slice(-2);
  if (a.device === "cpu") {
    const A = a.storage.host!, B = b.storage.host!, O = out.storage.host!;
    forEachOffset(batch, [av, bv], (bi, [a0, b0]) => {
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += A[a0 + m * sam + k * sak] * B[b0 + k * sbk + n * sbn];
          O[(bi * M + m) * N + n] = acc;
        }
      }
    });
  } else {
    const params = [
      numel(batch),
      M,
      N,
      K,
      ...shapeWords(batch),
      ...viewWords(av),
      sam,
      sak,
      ...viewWords(bv),
      sbk,
      sbn,
    ];
    const io = { params, reads: [a.storage.binding, b.storage.binding], writes: [out.storage.binding] };
    const layout = vec4Layout(
      [av.offset, ...av.strides],
      [bv.offset, ...bv.strides],
      sam,
      sak,
      sbk,
      sbn,
      M,
      N,
      K,
    );
    const wgBytes = gpu().device.limits.maxComputeWorkgroupStorageSize;
    const K4 = Math.ceil(K / 4), nb = numel(batch);
    // the texture variants' operands: A as [M, K4] texels, or where A is a transposed view of rows
    // of M floats as [4 K4, M / 4], B as [4 K4, N / 4] (kernels/matmul_texture.ts); rows folded
    // where that lets a copy make them (a fold of rows along k divides 4: see the kernel)
    const aT = sak !== 1 && sam === 1 && M % 4 === 0;
    const texA = aT
      ? fold({ batch, view: av, rows: K, cols: M, strides: [sak, sam], R: 4 * K4, W: M / 4 }, a, 4)
      : fold({ batch, view: av, rows: M, cols: K, strides: [sam, sak], R: M, W: K4 }, a);
    const texB = fold({ batch, view: bv, rows: K, cols: N, strides: [sbk, sbn], R: 4 * K4, W: N / 4 }, b, 4);
    // split-K where each split keeps a long run of k, and its partial sums stay small
    const S = (v: Variant) => v.vec4?.splitK ?? 1;
    const fits = (v: Variant) =>
      (!v.vec4 || (layout !== null && (layout.a === "k" || v.vec4.tm % 4 === 0))) &&
      (S(v) === 1 || (K >= 128 * S(v) && S(v) * M * N * numel(batch) <= 1 << 22)) &&
      (!v.tiled || tiledBytes(v.tiled) <= wgBytes) &&
      (!v.texture || (N % 4 === 0 && textureFits(texA) && textureFits(texB)));
    const partials: Tensor[] = [], textures: GPUTexture[] = [];
    const form = layout ? `${layout.a}${layout.b}` : "strided";
    runVariant("matmul", { M, N, K, form }, fits, (v) => {
      const name = `matmul_${v.name}`;
      if (v.vec4) {
        const kernel = {
          name,
          code: matmulVec4WGSL(layout!, v.vec4),
          workgroups: matmulVec4Grid(nb, M, N, v.vec4),
        };
        const S = v.vec4.splitK ?? 1;
        return S === 1 ? { ...kernel, ...io } : splitK({ ...kernel, params }, io.reads, out, S, partials);
      }
      if (v.texture) {
        return [
          packTexture(a, texA, textures),
          packTexture(b, texB, textures),
          {
            name,
            code: matmulTextureWGSL(v.texture, aT),
            params: [nb, M, N, K, texA.F ?? 1, texB.F ?? 1],
            reads: textures.slice(-2).map((texture) => ({ texture })),
            writes: [out.storage.binding],
            workgroups: matmulTextureGrid(nb, M, N, v.texture),
          },
        ];
      }
      if (v.tiled) {
        const order = { a: sak === 1 ? "k" : "m", b: sbn === 1 ? "n" : "k" } as const;
        return {
          name,
          code: matmulTiledWGSL(v.tiled, order, wgBytes),
          ...io,
          workgroups: matmulTiledGrid(nb, M, N, v.tiled),
        };
      }
      if (v.gemm) {
        return { name, code: matmulBlockedWGSL(v.gemm), ...io, workgroups: gemmGrid(nb, M, N, v.gemm) };
      }
      return { name, code: matmulNaiveWGSL(), ...io, threads: out.size };
    });
    // (buffers and textures are reused only by later commands)
    for (const p of partials) p.dispose();
    for (const t of textures) gpu().textures.release(t);
  }
  return fromOp("matmul", out, [a, b], (g) => [
    a.requiresGrad ? sumTo(matmul(g, transpose(b)), a.shape) : null,
    b.requiresGrad ? sumTo(matmul(transpose(a), g), b.shape) : null,
  ]);
}

/**
 * A split-K launch: `kernel` (reading `reads`) writes S partial sums [S, out.size] into a scratch
 * buffer, pushed on `scratch` for the caller to dispose once the launch is recorded, and
 * split_sum adds them into `out`.
 */
export function splitK(
  kernel: Omit<Dispatch, "reads" | "writes">,
  reads: Dispatch["reads"],
  out: Tensor,
  S: number,
  scratch: Tensor[],
): Dispatch[] {
  const part = empty([S, out.size], { device: out.device, dtype: out.dtype });
  scratch.push(part);
  return [
    { ...kernel, reads, writes: [part.storage.binding] },
    {
      name: "split_sum",
      code: splitSumWGSL(),
      params: [out.size, S],
      reads: [part.storage.binding],
      writes: [out.storage.binding],
      threads: out.size,
    },
  ];
}

/** The vec4 kernel's operand layout when every stride and offset allows 16-byte loads, else null. */
function vec4Layout(
  aw: number[],
  bw: number[],
  sam: number,
  sak: number,
  sbk: number,
  sbn: number,
  M: number,
  N: number,
  K: number,
): Vec4Layout | null {
  const m4 = (x: number) => x % 4 === 0;
  if (!m4(N) || !aw.every(m4) || !bw.every(m4)) return null;
  const a = sak === 1 && m4(K) && m4(sam) ? "k" : sam === 1 && m4(M) && m4(sak) ? "m" : null;
  const b = sbn === 1 && m4(sbk) ? "n" : sbk === 1 && m4(K) && m4(sbn) ? "k" : null;
  if (!a || !b || (a === "m" && b === "k")) return null;
  return { a, b };
}
