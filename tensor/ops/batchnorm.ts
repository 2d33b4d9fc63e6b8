// batchNorm2d over the channels of NCHW input, in fused kernels (kernels/batchnorm.ts). Training
// normalises with the batch statistics (biased variance) and moves the running statistics toward
// them (unbiased variance), as PyTorch does; eval uses the running statistics.
//
// The gradient, with xhat = (x - mean) * rstd, M values per channel and dz = dy (masked by y > 0
// under a fused relu; the residual's gradient is dz):
//   dx = rstd * w * (dz - mean(dz) - xhat * mean(dz * xhat)),  dw = sum(dz * xhat),  db = sum(dz)
// In eval the statistics are constants: dx = rstd * w * dz.

import {
  type BnDims,
  bnFoldWGSL,
  bnGradSumsWGSL,
  bnGradWGSL,
  bnNormalizeWGSL,
  bnRunningWGSL,
  bnStatsWGSL,
  bnWidth,
} from "../../kernels/batchnorm.ts";
import { f32Bits } from "../../kernels/common.ts";
import { empty, ones, zeros } from "../create.ts";
import { gpu } from "../storage.ts";
import { fromOp, noGrad, Tensor } from "../tensor.ts";
import { add, copyInto, rsqrt } from "./elementwise.ts";
import { dense, denseBinding, denseHost, packed, reshape, slice } from "./movement.ts";
import { register } from "./registry.ts";

register("batchNorm2d");

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
  /** fused tail: y = relu?(bn(x) + residual?), one pass each way instead of three */
  residual?: Tensor;
  relu?: boolean;
}

/** Per-channel [2, C] mean and rstd of x [N, C, H, W] (the batch's). */
function batchStats(x: Tensor, eps: number): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W, M = N * HW;
  const stats = empty([2, C], { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!, S = stats.storage.host!;
    for (let c = 0; c < C; c++) {
      let s = 0, v = 0;
      for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) s += X[(n * C + c) * HW + p];
      const mean = s / M;
      for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) v += (X[(n * C + c) * HW + p] - mean) ** 2;
      S[c] = mean, S[C + c] = 1 / Math.sqrt(v / M + eps);
    }
  } else {
    gpu().run({
      name: "bn_stats",
      code: bnStatsWGSL({ N, C, HW }),
      params: [f32Bits(eps)],
      reads: [x.storage.binding],
      writes: [stats.storage.binding],
      workgroups: [C, 1, 1],
    });
  }
  return stats;
}

/** y = relu?((x - stats[0]) * stats[1] * w + b + r?) per channel. */
function normalize(x: Tensor, stats: Tensor, w: Tensor, b: Tensor, r: Tensor | null, relu: boolean): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W, g: BnDims = { N, C, HW };
  const y = empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!, S = stats.storage.host!, Wt = denseHost(w), B = denseHost(b);
    const R = r?.storage.host, Y = y.storage.host!;
    for (let i = 0; i < X.length; i++) {
      const c = Math.floor(i / HW) % C, v = (X[i] - S[c]) * S[C + c] * Wt[c] + B[c] + (R ? R[i] : 0);
      Y[i] = relu ? Math.max(v, 0) : v;
    }
  } else {
    gpu().run({
      name: "bn_normalize",
      code: bnNormalizeWGSL(g, { residual: !!r, relu }),
      params: [x.size / bnWidth(g)],
      reads: [x, stats, w, b, ...(r ? [r] : [])].map(denseBinding),
      writes: [y.storage.binding],
      threads: x.size / bnWidth(g),
    });
  }
  return y;
}

/**
 * [6, C] per channel, with dz = dy (masked by y > 0 when `y` is given): sum(dz), sum(dz xhat), mean,
 * rstd w, and dx's batch terms sum(dz) / M and rstd sum(dz xhat) / M (0 when `batch` is false).
 */
function gradSums(x: Tensor, dy: Tensor, y: Tensor | null, stats: Tensor, w: Tensor, batch: boolean): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W, M = N * HW;
  const k = empty([6, C], { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!, G = dy.storage.host!, Y = y?.storage.host, S = stats.storage.host!;
    const Wt = denseHost(w), K = k.storage.host!;
    for (let c = 0; c < C; c++) {
      let s = 0, sx = 0;
      for (let n = 0; n < N; n++) {
        for (let p = 0; p < HW; p++) {
          const i = (n * C + c) * HW + p, d = Y && Y[i] <= 0 ? 0 : G[i];
          s += d, sx += d * (X[i] - S[c]) * S[C + c];
        }
      }
      [s, sx, S[c], S[C + c] * Wt[c], batch ? s / M : 0, batch ? (S[C + c] * sx) / M : 0]
        .forEach((v, row) => (K[row * C + c] = v));
    }
  } else {
    gpu().run({
      name: "bn_gradsums",
      code: bnGradSumsWGSL({ N, C, HW }, { relu: !!y, batch }),
      params: [0],
      reads: [x, dy, ...(y ? [y] : []), stats, w].map(denseBinding),
      writes: [k.storage.binding],
      workgroups: [C, 1, 1],
    });
  }
  return k;
}

/** dx = rstd w (dz - sum(dz) / M - xhat sum(dz xhat) / M) from gradSums' k; dr = dz with `residual`. */
function inputGrad(
  x: Tensor,
  dy: Tensor,
  y: Tensor | null,
  k: Tensor,
  residual: boolean,
): [Tensor, Tensor | null] {
  const [N, C, H, W] = x.shape, HW = H * W, g: BnDims = { N, C, HW };
  const dx = empty(x.shape, { device: x.device, dtype: x.dtype });
  const dr = residual ? empty(x.shape, { device: x.device, dtype: x.dtype }) : null;
  if (x.device === "cpu") {
    const X = x.storage.host!, G = dy.storage.host!, Y = y?.storage.host, K = k.storage.host!;
    const D = dx.storage.host!, R = dr?.storage.host;
    for (let i = 0; i < X.length; i++) {
      const c = Math.floor(i / HW) % C, d = Y && Y[i] <= 0 ? 0 : G[i];
      D[i] = K[3 * C + c] * (d - K[4 * C + c] - (X[i] - K[2 * C + c]) * K[5 * C + c]);
      if (R) R[i] = d;
    }
  } else {
    gpu().run({
      name: "bn_grad",
      code: bnGradWGSL(g, { relu: !!y, residual }),
      params: [x.size / bnWidth(g)],
      reads: [x, dy, ...(y ? [y] : []), k].map(denseBinding),
      writes: [dx.storage.binding, ...(dr ? [dr.storage.binding] : [])],
      threads: x.size / bnWidth(g),
    });
  }
  return [dx, dr];
}

/** Moves the running statistics (contiguous [C] buffers) toward the batch's [2, C] mean and rstd. */
function updateRunning(
  stats: Tensor,
  mean: Tensor,
  variance: Tensor,
  momentum: number,
  eps: number,
  unbias: number,
) {
  const C = mean.size;
  if (!mean.isContiguous || !variance.isContiguous || mean.offset !== 0 || variance.offset !== 0) {
    throw new Error("batchNorm2d: running statistics must be contiguous buffers");
  }
  if (stats.device === "cpu") {
    const S = stats.storage.host!, Mu = mean.storage.host!, V = variance.storage.host!;
    for (let c = 0; c < C; c++) {
      const unbiased = (1 / (S[C + c] * S[C + c]) - eps) * unbias;
      Mu[c] += momentum * (S[c] - Mu[c]);
      V[c] += momentum * (unbiased - V[c]);
    }
    return;
  }
  gpu().run({
    name: "bn_running",
    code: bnRunningWGSL(),
    params: [C, ...[momentum, eps, unbias].map(f32Bits)],
    reads: [stats.storage.binding],
    writes: [mean.storage.binding, variance.storage.binding],
    threads: C,
  });
}

export function batchNorm2d(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  { training, momentum = 0.1, eps = 1e-5, residual, relu = false }: BatchNormOptions,
): Tensor {
  if (x.ndim !== 4) throw new Error(`batchNorm2d needs NCHW input, got [${x.shape}]`);
  if (residual && residual.shape.join() !== x.shape.join()) {
    throw new Error(`batchNorm2d: residual [${residual.shape}] does not match input [${x.shape}]`);
  }
  const [N, C, H, W] = x.shape, M = N * H * W, o = { device: x.device, dtype: x.dtype };
  const batch = training || !runningMean || !runningVar;
  if (batch && training && M <= 1) {
    throw new Error(`batchNorm2d: training needs more than 1 value per channel, got [${x.shape}]`);
  }
  const xc = packed(x);
  const w = weight ? dense(weight) : ones([C], o), b = bias ? dense(bias) : zeros([C], o);
  const stats = batch
    ? batchStats(xc, eps)
    : noGrad(() => packed(reshape(concatStats(runningMean!, runningVar!, eps), [2, C])));
  if (batch && training && runningMean && runningVar) {
    updateRunning(stats, runningMean, runningVar, momentum, eps, M / Math.max(1, M - 1));
  }
  const r = residual ? packed(residual) : null;
  const y = normalize(xc, stats, w, b, r, relu);
  if (r && r !== residual) r.dispose();
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return fromOp("batchNorm2d", y, inputs, (dy) => {
    const g = packed(dy);
    // with constant (running) statistics dx = rstd w dz: gradSums zeroes the batch terms
    const k = gradSums(xc, g, relu ? y : null, stats, w, batch);
    const [dx, dr] = inputGrad(xc, g, relu ? y : null, k, !!residual);
    const grads: (Tensor | null)[] = [dx];
    if (weight) grads.push(reshape(slice(k, 0, 1, 2), [C]));
    if (bias) grads.push(reshape(slice(k, 0, 0, 1), [C]));
    if (residual) grads.push(dr);
    return grads;
  });
}

/**
 * An eval batchnorm after a conv, as that conv's epilogue (F.conv2dFused): per channel
 * scale = w / sqrt(var + eps) and shift = b - (mean - convBias) * scale, in one launch. For
 * inference: nothing is recorded for autograd.
 */
export function batchNormFold(
  weight: Tensor,
  bias: Tensor,
  mean: Tensor,
  variance: Tensor,
  eps: number,
  convBias: Tensor | null = null,
): { scale: Tensor; shift: Tensor } {
  const given = [weight, bias, mean, variance, ...(convBias ? [convBias] : [])];
  if (given.some((t) => t.ndim !== 1 || t.size !== weight.size)) {
    throw new Error(
      `batchNormFold: every vector must be [${weight.size}], got ${given.map((t) => `[${t.shape}]`)}`,
    );
  }
  const C = weight.size, o = { device: weight.device, dtype: weight.dtype };
  const ins = given.map(dense), scale = empty([C], o), shift = empty([C], o);
  if (weight.device === "cpu") {
    const [Wt, B, Mu, V, Cb] = ins.map(denseHost), S = scale.storage.host!, H = shift.storage.host!;
    for (let c = 0; c < C; c++) {
      S[c] = Wt[c] / Math.sqrt(V[c] + eps);
      H[c] = B[c] - (Mu[c] - (Cb ? Cb[c] : 0)) * S[c];
    }
  } else {
    gpu().run({
      name: "bn_fold",
      code: bnFoldWGSL(!!convBias),
      params: [C, f32Bits(eps)],
      reads: ins.map(denseBinding),
      writes: [scale.storage.binding, shift.storage.binding],
      threads: C,
    });
  }
  ins.forEach((t, k) => t !== given[k] && t.dispose());
  return { scale, shift };
}

/** Running statistics as the [2, C] (mean, rstd) the kernels take. */
function concatStats(mean: Tensor, variance: Tensor, eps: number): Tensor {
  const C = mean.shape[0];
  const out = empty([2, C], { device: mean.device, dtype: mean.dtype });
  copyInto(slice(out, 0, 0, 1), reshape(mean, [1, C]));
  copyInto(slice(out, 0, 1, 2), reshape(rsqrt(add(variance, eps)), [1, C]));
  return out;
}
