// The WebGPU runtime: one device, one pipeline cache, one buffer pool, and one command encoder
// that collects every dispatch until a read-back (or a full parameter arena) submits it.
//
// Kernel convention: binding 0 is the kernel's parameters (`params: array<u32>`, floats bit-cast),
// then the read-only inputs, then the outputs. Threads are laid out 1-D in workgroups of 64,
// folded into 2-D when the count exceeds the per-dimension limit; kernels recover the flat index
// with `flatIndex` (see kernels/common.ts).

import { BufferPool } from "./pool.ts";

export interface AdapterReport {
  description: string;
  vendor: string;
  architecture: string;
  fallback: boolean;
  limits: Record<string, number>;
}

export interface Binding {
  buffer: GPUBuffer;
  /** bytes the kernel may touch, checked against maxStorageBufferBindingSize */
  bytes: number;
}

export interface Dispatch {
  name: string;
  code: string;
  params: ArrayLike<number> | Uint32Array;
  reads: Binding[];
  writes: Binding[];
  /** total threads (1-D) or explicit workgroup counts */
  threads?: number;
  workgroups?: [number, number, number];
}

export const WORKGROUP = 64;
const ARENA_BYTES = 1 << 20;

export class Runtime {
  readonly pool: BufferPool;
  #pipelines = new Map<string, GPUComputePipeline>();
  #layouts = new Map<string, GPUBindGroupLayout>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #arena: GPUBuffer;
  #arenaHost = new Uint32Array(ARENA_BYTES / 4);
  #arenaUsed = 0;
  #align: number;
  #error: string | null = null;
  dispatches = 0;
  submits = 0;

  private constructor(readonly device: GPUDevice, readonly adapter: AdapterReport) {
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    this.#arena = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.#align = Math.max(256, device.limits.minStorageBufferOffsetAlignment);
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    device.lost.then((info) => this.#error ??= `device lost: ${info.message}`);
  }

  /** Null when this machine has no WebGPU adapter at all. */
  static async create(): Promise<Runtime | null> {
    const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const want = [
      "maxStorageBufferBindingSize",
      "maxBufferSize",
      "maxStorageBuffersPerShaderStage",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupsPerDimension",
    ] as const;
    const limits: Record<string, number> = {};
    for (const k of want) limits[k] = adapter.limits[k];
    const features = adapter.features.has("timestamp-query") ? ["timestamp-query" as GPUFeatureName] : [];
    const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures: features });
    const info = adapter.info;
    return new Runtime(device, {
      description: info.description || info.device || "unknown adapter",
      vendor: info.vendor,
      architecture: info.architecture,
      fallback: info.isFallbackAdapter ?? false,
      limits,
    });
  }

  /** Records one kernel launch after checking it against the device's limits. */
  run(d: Dispatch): void {
    this.#throwIfFailed();
    const lim = this.device.limits;
    const buffers = d.reads.length + d.writes.length + 1;
    if (buffers > lim.maxStorageBuffersPerShaderStage) {
      throw new Error(`${d.name}: ${buffers} storage buffers > limit ${lim.maxStorageBuffersPerShaderStage}`);
    }
    for (const b of [...d.reads, ...d.writes]) {
      if (b.bytes > lim.maxStorageBufferBindingSize) {
        throw new Error(
          `${d.name}: binding of ${b.bytes} bytes > maxStorageBufferBindingSize ${lim.maxStorageBufferBindingSize}`,
        );
      }
    }
    const groups = d.workgroups ?? this.#grid(d.name, d.threads ?? 0);
    if (groups.some((g) => g > lim.maxComputeWorkgroupsPerDimension)) {
      throw new Error(`${d.name}: workgroups [${groups}] > limit ${lim.maxComputeWorkgroupsPerDimension}`);
    }
    if (groups.some((g) => g === 0)) return;
    const paramsOffset = this.#stage(d.params);
    const pipeline = this.#pipeline(d.name, d.code, d.reads.length, d.writes.length);
    const entries: GPUBindGroupEntry[] = [
      {
        binding: 0,
        resource: { buffer: this.#arena, offset: paramsOffset, size: Math.max(4, d.params.length * 4) },
      },
    ];
    for (const [i, b] of [...d.reads, ...d.writes].entries()) {
      entries.push({
        binding: i + 1,
        resource: { buffer: b.buffer, size: Math.max(4, alignUp(b.bytes, 4)) },
      });
    }
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...groups);
    this.dispatches++;
  }

  /** A buffer holding `data`, safe to write now even with commands pending. */
  upload(data: Float32Array | Int32Array): GPUBuffer {
    const buf = this.pool.acquire(Math.max(4, data.byteLength), true);
    if (data.byteLength > 0) {
      this.device.queue.writeBuffer(
        buf,
        0,
        new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength),
      );
    }
    return buf;
  }

  /** Submits pending work, then copies `bytes` from the buffer back to the host. */
  async read(buffer: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    const start = byteOffset - (byteOffset % 4);
    const size = alignUp(byteOffset + bytes, 4) - start;
    const staging = this.device.createBuffer({
      size: Math.max(4, size),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    if (size > 0) this.#encoderNow().copyBufferToBuffer(buffer, start, staging, 0, size);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(byteOffset - start, byteOffset - start + bytes);
    staging.unmap();
    staging.destroy();
    this.#throwIfFailed();
    return out;
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    this.#endPass();
    if (!this.#encoder) return;
    if (this.#arenaUsed > 0) {
      this.device.queue.writeBuffer(this.#arena, 0, this.#arenaHost, 0, this.#arenaUsed / 4);
    }
    this.device.queue.submit([this.#encoder.finish()]);
    this.#encoder = null;
    this.#arenaUsed = 0;
    this.pool.submitted();
    this.submits++;
  }

  /** Waits for the queue to drain (for timing and tests). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#error) throw new Error(`WebGPU error: ${this.#error}`);
  }

  #grid(name: string, threads: number): [number, number, number] {
    const groups = Math.ceil(threads / WORKGROUP);
    const maxX = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1, 1];
    const y = Math.ceil(groups / maxX);
    if (y > maxX) throw new Error(`${name}: ${threads} threads exceed the dispatch grid`);
    return [Math.ceil(groups / y), y, 1];
  }

  #stage(params: ArrayLike<number>): number {
    const bytes = alignUp(Math.max(4, params.length * 4), this.#align);
    if (bytes > ARENA_BYTES) throw new Error(`kernel parameters of ${bytes} bytes exceed the arena`);
    if (this.#arenaUsed + bytes > ARENA_BYTES) this.flush();
    const offset = this.#arenaUsed;
    this.#arenaHost.set(params, offset / 4);
    this.#arenaUsed += bytes;
    this.#encoderNow();
    return offset;
  }

  #pipeline(name: string, code: string, reads: number, writes: number): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (p) return p;
    const layoutKey = `${reads}:${writes}`;
    let layout = this.#layouts.get(layoutKey);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (let i = 0; i <= reads + writes; i++) {
        const type = i === 0 || i <= reads ? "read-only-storage" : "storage";
        entries.push({ binding: i, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
      }
      layout = this.device.createBindGroupLayout({ entries });
      this.#layouts.set(layoutKey, layout);
    }
    const module = this.device.createShaderModule({ label: name, code });
    p = this.device.createComputePipeline({
      label: name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.#pipelines.set(code, p);
    return p;
  }

  #encoderNow(): GPUCommandEncoder {
    return this.#encoder ??= this.device.createCommandEncoder();
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#encoderNow().beginComputePass();
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
