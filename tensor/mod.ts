// The tensor library: tensors with reverse-mode autograd on WebGPU, and a float64 CPU reference.
//
// Importing this module sets up WebGPU; when the machine has no adapter, `device()` is "cpu".

import "./methods.ts";
import { initWebGPU } from "./storage.ts";

export { isGradEnabled, noGrad, Tensor, tidy } from "./tensor.ts";
export { arange, empty, full, ones, rand, randn, tensor, type TensorOptions, zeros } from "./create.ts";
export { type Device, device, type DType, gpu, initWebGPU, memory, setBackend } from "./storage.ts";
export { manualSeed, rngState, setRngState } from "./random.ts";
export * as F from "./ops/mod.ts";
export * as nn from "./nn/mod.ts";
export * as optim from "./optim/mod.ts";
export { loadSafetensors, saveSafetensors } from "./io/tensors.ts";
export type { Shape } from "./shape.ts";

await initWebGPU();
