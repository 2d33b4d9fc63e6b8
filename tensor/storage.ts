// Where tensor data lives: host typed arrays for the CPU reference, pooled GPU buffers for WebGPU.
// A Storage is shared by a tensor and its views and counts its owners; the last release returns
// the GPU buffer to the pool.

import { Runtime } from "./webgpu/runtime.ts";

export type DType = "f32" | "f64" | "i32";
export type Device = "cpu" | "webgpu";
export type HostArray = Float32Array | Float64Array | Int32Array;

export class Storage {
  refs = 1;
  constructor(
    readonly device: Device,
    readonly dtype: DType,
    readonly length: number,
    readonly host: HostArray | null,
    readonly buffer: GPUBuffer | null,
    /** known value range of an index tensor uploaded from the host, checked before gathers */
    readonly range: { min: number; max: number } | null = null,
  ) {}

  get bytes(): number {
    return this.length * (this.dtype === "f64" ? 8 : 4);
  }

  /** This storage as a kernel binding (WebGPU only). */
  get binding(): { buffer: GPUBuffer; bytes: number } {
    if (!this.buffer) throw new Error("internal: binding a CPU storage");
    return { buffer: this.buffer, bytes: this.bytes };
  }

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0 && this.buffer) gpu().pool.release(this.buffer);
  }
}

let runtime: Runtime | null = null;
let initialised = false;
let active: Device = "cpu";

/** Sets up WebGPU once; when this machine has no adapter the default device stays "cpu". */
export async function initWebGPU(): Promise<Runtime | null> {
  if (!initialised) {
    initialised = true;
    runtime = await Runtime.create();
    if (runtime) active = "webgpu";
  }
  return runtime;
}

export function gpu(): Runtime {
  if (!runtime) {
    throw new Error(
      initialised
        ? "no WebGPU adapter on this machine (install Mesa: lavapipe or llvmpipe), use setBackend('cpu')"
        : "WebGPU is not initialised: await initWebGPU() first",
    );
  }
  return runtime;
}

/** The device new tensors go to: "webgpu" when an adapter exists, else "cpu". */
export function device(): Device {
  return active;
}

export function setBackend(d: Device): void {
  if (d === "webgpu") gpu();
  active = d;
}

/**
 * Bytes held by live GPU tensors (and scratch textures), and bytes kept in the pools for reuse
 * (zeros without WebGPU).
 */
export function memory(): { liveBytes: number; pooledBytes: number } {
  if (!runtime) return { liveBytes: 0, pooledBytes: 0 };
  const { pool, textures } = runtime;
  return {
    liveBytes: pool.liveBytes + textures.liveBytes,
    pooledBytes: pool.pooledBytes + textures.pooledBytes,
  };
}

function hostArray(dtype: DType, n: number): HostArray {
  return dtype === "f64" ? new Float64Array(n) : dtype === "i32" ? new Int32Array(n) : new Float32Array(n);
}

/** Uninitialised storage for a kernel's output (zeroed on the CPU, arbitrary on the GPU). */
export function allocStorage(device: Device, dtype: DType, length: number): Storage {
  if (device === "cpu") return new Storage("cpu", dtype, length, hostArray(dtype, length), null);
  if (dtype === "f64") {
    throw new Error("WebGPU tensors are f32 (or i32 indices); f64 is for the CPU reference");
  }
  return new Storage("webgpu", dtype, length, null, gpu().pool.acquire(Math.max(4, length * 4)));
}

export function storageFrom(device: Device, dtype: DType, data: ArrayLike<number>): Storage {
  let range = null;
  if (dtype === "i32") {
    let min = Infinity, max = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new Error(`i32 tensor given ${v}`);
      min = Math.min(min, v), max = Math.max(max, v);
    }
    range = { min, max };
  }
  const host = hostArray(dtype, data.length);
  host.set(data);
  if (device === "cpu") return new Storage("cpu", dtype, data.length, host, null, range);
  if (dtype === "f64") {
    throw new Error("WebGPU tensors are f32 (or i32 indices); f64 is for the CPU reference");
  }
  return new Storage(
    "webgpu",
    dtype,
    data.length,
    null,
    gpu().upload(host as Float32Array | Int32Array),
    range,
  );
}

/** Copies `length` elements from `offset` back to the host. */
export async function readStorage(s: Storage, offset: number, length: number): Promise<HostArray> {
  if (s.host) return s.host.slice(offset, offset + length);
  const bytes = await gpu().read(s.buffer!, offset * 4, length * 4);
  return s.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
}
