// Dropout with a mask drawn from the global seeded stream (tensor/random.ts); the mask is
// bit-identical on every device. Identity when not training.

import { f32Bits } from "../../kernels/common.ts";
import { dropoutMaskWGSL } from "../../kernels/dropout.ts";
import { empty } from "../create.ts";
import { bits, nextKey } from "../random.ts";
import { gpu } from "../storage.ts";
import { Tensor } from "../tensor.ts";
import { mul } from "./elementwise.ts";
import { register } from "./registry.ts";

register("dropout");

/** Zeroes each element with probability p and scales the rest by 1 / (1 - p). */
export function dropout(x: Tensor, p: number, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout probability must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const key = nextKey(), threshold = Math.round(p * 2 ** 24), scale = p === 1 ? 0 : 1 / (1 - p);
  const mask = empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.device === "cpu") {
    const m = mask.storage.host!;
    for (let i = 0; i < m.length; i++) m[i] = bits(key, i) >>> 8 >= threshold ? scale : 0;
  } else {
    gpu().run({
      name: "dropout_mask",
      code: dropoutMaskWGSL(),
      params: [mask.size, key, threshold, f32Bits(scale)],
      reads: [],
      writes: [mask.storage.binding],
      threads: mask.size,
    });
  }
  return mul(x, mask);
}
