// batchNorm2d over the channels of NCHW input, composed from reductions and elementwise ops (its
// gradient follows by autograd). Training normalises with the batch statistics (biased variance)
// and moves the running statistics toward them (unbiased variance), as PyTorch does.

import { noGrad, Tensor } from "../tensor.ts";
import { add, copyInto, mul, rsqrt, sub } from "./elementwise.ts";
import { reshape } from "./movement.ts";
import { mean, variance } from "./reduce.ts";
import { register } from "./registry.ts";

register("batchNorm2d");

export interface BatchNormOptions {
  training: boolean;
  momentum?: number;
  eps?: number;
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
  const C = x.shape[1], perChannel = (t: Tensor) => reshape(t, [1, C, 1, 1]);
  let y: Tensor;
  if (training || !runningMean || !runningVar) {
    const n = x.size / C;
    if (training && n <= 1) {
      throw new Error(`batchNorm2d: training needs more than 1 value per channel, got [${x.shape}]`);
    }
    const mu = mean(x, [0, 2, 3], true), v = variance(x, [0, 2, 3], true, 0);
    y = mul(sub(x, mu), rsqrt(add(v, eps)));
    if (training && runningMean && runningVar) {
      noGrad(() => {
        copyInto(runningMean, add(mul(runningMean, 1 - momentum), mul(reshape(mu, [C]), momentum)));
        copyInto(
          runningVar,
          add(mul(runningVar, 1 - momentum), mul(reshape(v, [C]), (momentum * n) / (n - 1))),
        );
      });
    }
  } else {
    y = mul(sub(x, perChannel(runningMean)), rsqrt(add(perChannel(runningVar), eps)));
  }
  if (weight) y = mul(y, perChannel(weight));
  return bias ? add(y, perChannel(bias)) : y;
}
