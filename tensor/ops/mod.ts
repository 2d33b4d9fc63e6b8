// All ops, and those the autograd engine needs wired into it.

import { ones, zeros } from "../create.ts";
import { wireEngine } from "../tensor.ts";
import { add, addInto, copyInto } from "./elementwise.ts";

export * from "./elementwise.ts";
export * from "./reduce.ts";
export * from "./movement.ts";
export * from "./matmul.ts";
export * from "./rows.ts";
export * from "./conv.ts";
export * from "./pool.ts";
export * from "./index.ts";
export * from "./batchnorm.ts";
export * from "./dropout.ts";
export * from "./loss.ts";
export * from "./attention.ts";
export { OPS } from "./registry.ts";

wireEngine({
  add,
  ones: (t) => ones(t.shape, { device: t.device, dtype: t.dtype }),
  zeros: (t) => zeros(t.shape, { device: t.device, dtype: t.dtype }),
  copyInto,
  addInto,
});
