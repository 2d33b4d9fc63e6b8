// All ops, and the two the autograd engine needs wired into it.

import { ones } from "../create.ts";
import { wireEngine } from "../tensor.ts";
import { add } from "./elementwise.ts";

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

wireEngine(add, (t) => ones(t.shape, { device: t.device, dtype: t.dtype }));
