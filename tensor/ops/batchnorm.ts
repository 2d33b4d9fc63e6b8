// batchNorm2d over the channels of NCHW input, in fused kernels (kernels/batchnorm.ts). Training
// normalises with the batch statistics (biased variance) and moves the running statistics toward
// them (unbiased variance), as PyTorch does; eval uses the running statistics.
//
// The gradient, with xhat = (x - mean) * rstd and M values per channel:
//   dx = rstd * w * (dy - mean(dy) - xhat * mean(dy * xhat)),  dw = sum(dy * xhat),  db = sum(dy)
// In eval the statistics are constants: dx = rstd * w * dy.

import {
  type BnDims,
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
import { add, copyInto, mul, rsqrt } from "./elementwise.ts";
import { dense, denseBinding, denseHost, packed, reshape, slice } from "./movement.ts";
import { register } from "./registry.ts";

register("batchNorm2d");

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
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

/** y = (x - stats[0]) * stats[1] * w + b per channel. */
function normalize(x: Tensor, stats: Tensor, w: Tensor, b: Tensor): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W, g: BnDims = { N, C, HW };
  const y = empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!,
      S = stats.storage.host!,
      Wt = denseHost(w),
      B = denseHost(b),
      Y = y.storage.host!;
    for (let i = 0; i < X.length; i++) {
      const c = Math.floor(i / HW) % C;
      Y[i] = (X[i] - S[c]) * S[C + c] * Wt[c] + B[c];
    }
  } else {
    gpu().run({
      name: "bn_normalize",
      code: bnNormalizeWGSL(g),
      params: [x.size / bnWidth(g)],
      reads: [x, stats, w, b].map(denseBinding),
      writes: [y.storage.binding],
      threads: x.size / bnWidth(g),
    });
  }
  return y;
}

/** [2, C] sums of dy and dy * xhat per channel. */
function gradSums(x: Tensor, dy: Tensor, stats: Tensor): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W;
  const sums = empty([2, C], { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!, G = dy.storage.host!, S = stats.storage.host!, O = sums.storage.host!;
    for (let c = 0; c < C; c++) {
      let s = 0, sx = 0;
      for (let n = 0; n < N; n++) {
        for (let p = 0; p < HW; p++) {
          const k = (n * C + c) * HW + p;
          s += G[k], sx += G[k] * (X[k] - S[c]) * S[C + c];
        }
      }
      O[c] = s, O[C + c] = sx;
    }
  } else {
    gpu().run({
      name: "bn_gradsums",
      code: bnGradSumsWGSL({ N, C, HW }),
      params: [0],
      reads: [x, dy, stats].map((t) => t.storage.binding),
      writes: [sums.storage.binding],
      workgroups: [C, 1, 1],
    });
  }
  return sums;
}

function inputGrad(x: Tensor, dy: Tensor, stats: Tensor, sums: Tensor, w: Tensor): Tensor {
  const [N, C, H, W] = x.shape, HW = H * W, M = N * HW, g: BnDims = { N, C, HW };
  const dx = empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const X = x.storage.host!, G = dy.storage.host!, S = stats.storage.host!, U = sums.storage.host!;
    const Wt = denseHost(w), D = dx.storage.host!;
    for (let i = 0; i < X.length; i++) {
      const c = Math.floor(i / HW) % C, rstd = S[C + c], xhat = (X[i] - S[c]) * rstd;
      D[i] = rstd * Wt[c] * (G[i] - U[c] / M - (xhat * U[C + c]) / M);
    }
  } else {
    gpu().run({
      name: "bn_grad",
      code: bnGradWGSL(g),
      params: [x.size / bnWidth(g)],
      reads: [x, dy, stats, sums, w].map(denseBinding),
      writes: [dx.storage.binding],
      threads: x.size / bnWidth(g),
    });
  }
  return dx;
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
  { training, momentum = 0.1, eps = 1e-5 }: BatchNormOptions,
): Tensor {
  if (x.ndim !== 4) throw new Error(`batchNorm2d needs NCHW input, got [${x.shape}]`);
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
  const y = normalize(xc, stats, w, b);
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return fromOp("batchNorm2d", y, inputs, (dy) => {
    const g = packed(dy);
    const sums = gradSums(xc, g, stats);
    // eval: constant statistics, so only the scale passes through (sums = 0 drop the other terms)
    const dx = batch
      ? inputGrad(xc, g, stats, sums, w)
      : mul(g, reshape(mul(slice(stats, 0, 1, 2), w), [1, C, 1, 1]));
    const grads: (Tensor | null)[] = [dx];
    if (weight) grads.push(reshape(slice(sums, 0, 1, 2), [C]));
    if (bias) grads.push(reshape(slice(sums, 0, 0, 1), [C]));
    return grads;
  });
}

/** Running statistics as the [2, C] (mean, rstd) the kernels take. */
function concatStats(mean: Tensor, variance: Tensor, eps: number): Tensor {
  const C = mean.shape[0];
  const out = empty([2, C], { device: mean.device, dtype: mean.dtype });
  copyInto(slice(out, 0, 0, 1), reshape(mean, [1, C]));
  copyInto(slice(out, 0, 1, 2), reshape(rsqrt(add(variance, eps)), [1, C]));
  return out;
}
