// Creating tensors: from host data, constants, ranges and the seeded PRNG (tensor/random.ts).

import { f32Bits } from "../kernels/common.ts";
import { fillWGSL } from "../kernels/fill.ts";
import { nextKey, normalAt, uniformAt } from "./random.ts";
import { checkShape, numel, type Shape } from "./shape.ts";
import { allocStorage, type Device, device, type DType, gpu, storageFrom } from "./storage.ts";
import { Tensor } from "./tensor.ts";

export interface TensorOptions {
  device?: Device;
  dtype?: DType;
  requiresGrad?: boolean;
}

type Nested = number | Nested[];

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) {
    if (t.dtype === "i32") throw new Error("i32 tensors cannot require grad");
    t.requiresGrad = true;
  }
  return t;
}

function flatten(data: Nested, shape: number[], out: number[], depth = 0): void {
  if (typeof data === "number") {
    if (depth !== shape.length) throw new Error("ragged nested array");
    out.push(data);
    return;
  }
  if (!Array.isArray(data)) throw new Error(`tensor(): expected numbers or arrays, got ${typeof data}`);
  if (depth === shape.length) shape.push(data.length);
  else if (shape[depth] !== data.length) throw new Error("ragged nested array");
  for (const x of data) flatten(x, shape, out, depth + 1);
}

/**
 * A tensor from a typed array / flat array with an explicit shape, or from nested arrays (shape
 * inferred). Default dtype f32; integer typed arrays default to i32.
 */
export function tensor(data: ArrayLike<number> | Nested, shape?: Shape, opts: TensorOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  if (ArrayBuffer.isView(data) || (Array.isArray(data) && shape)) flat = data as ArrayLike<number>;
  else {
    const s: number[] = [], out: number[] = [];
    flatten(data as Nested, s, out);
    flat = out;
    shape ??= s;
  }
  shape ??= [flat.length];
  checkShape(shape);
  if (numel(shape) !== flat.length) {
    throw new Error(`tensor(): ${flat.length} values do not fill shape [${shape}]`);
  }
  const dtype = opts.dtype ?? (data instanceof Int32Array ? "i32" : "f32");
  return finish(new Tensor(storageFrom(opts.device ?? device(), dtype, flat), shape), opts);
}

/** Uninitialised on the GPU (zeros on the CPU): for kernels that write every element. */
export function empty(shape: Shape, opts: TensorOptions = {}): Tensor {
  checkShape(shape);
  return finish(
    new Tensor(allocStorage(opts.device ?? device(), opts.dtype ?? "f32", numel(shape)), shape),
    opts,
  );
}

export function full(shape: Shape, value: number, opts: TensorOptions = {}): Tensor {
  const t = empty(shape, opts);
  if (t.storage.host) t.storage.host.fill(value);
  else {
    const bits = t.dtype === "i32" ? value >>> 0 : f32Bits(value);
    gpu().run({
      name: "fill",
      code: fillWGSL(t.dtype as "f32" | "i32"),
      params: [t.size, bits],
      reads: [],
      writes: [t.storage.binding],
      threads: t.size,
    });
  }
  return t;
}

export const zeros = (shape: Shape, opts: TensorOptions = {}) => full(shape, 0, opts);
export const ones = (shape: Shape, opts: TensorOptions = {}) => full(shape, 1, opts);

/** Same shape, device and dtype as `like`. */
export function fullLike(like: Tensor, value: number): Tensor {
  return full(like.shape, value, { device: like.device, dtype: like.dtype });
}

/** A 0-d constant on `like`'s device and dtype (what scalars in arithmetic become). */
export function scalarLike(like: Tensor, value: number): Tensor {
  return tensor([value], [], { device: like.device, dtype: like.dtype === "i32" ? "f32" : like.dtype });
}

export function arange(start: number, stop?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return tensor(Array.from({ length: n }, (_, i) => start + i * step), [n], opts);
}

/** Standard normal samples from the global seeded stream (identical on every device). */
export function randn(shape: Shape, opts: TensorOptions = {}): Tensor {
  const key = nextKey();
  return tensor(Array.from({ length: numel(shape) }, (_, i) => normalAt(key, i)), shape, opts);
}

/** Uniform samples in [low, high) from the global seeded stream. */
export function rand(shape: Shape, opts: TensorOptions & { low?: number; high?: number } = {}): Tensor {
  const key = nextKey(), lo = opts.low ?? 0, hi = opts.high ?? 1;
  return tensor(
    Array.from({ length: numel(shape) }, (_, i) => lo + (hi - lo) * uniformAt(key, i)),
    shape,
    opts,
  );
}
