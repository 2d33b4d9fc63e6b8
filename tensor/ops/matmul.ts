// Batched matrix product with NumPy semantics: 1-D operands are promoted (and the added dim
// removed), batch dims broadcast, transposed operands are read in place through their strides.

import { shapeWords, viewWords } from "../../kernels/common.ts";
import { matmulWGSL } from "../../kernels/matmul.ts";
import { empty } from "../create.ts";
import { broadcastShapes, numel } from "../shape.ts";
import { gpu } from "../storage.ts";
import { forEachOffset } from "../strided.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { broadcastStrides } from "./elementwise.ts";
import { squeeze, transpose, unsqueeze } from "./movement.ts";
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
    gpu().run({
      name: "matmul",
      code: matmulWGSL(),
      params: [
        out.size,
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
      ],
      reads: [a.storage.binding, b.storage.binding],
      writes: [out.storage.binding],
      threads: numel(out.shape),
    });
  }
  return fromOp("matmul", out, [a, b], (g) => [
    sumTo(matmul(g, transpose(b)), a.shape),
    sumTo(matmul(transpose(a), g), b.shape),
  ]);
}
