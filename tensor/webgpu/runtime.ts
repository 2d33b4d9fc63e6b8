// The WebGPU runtime: one device, one pipeline cache, one buffer pool, and one command encoder
// that collects every dispatch until a read-back (or a full parameter arena) submits it.
//
// Kernel convention: binding 0 is the kernel's parameters (u32 words, floats bit-cast, in a uniform
// buffer: kernels/common.ts), then the read-only inputs, then the outputs; an input or output may
// be a texture (TextureBinding). Threads are laid out 1-D in workgroups of 64, folded into 2-D when
// the count exceeds the per-dimension limit; kernels recover the flat index in `MAIN` (see
// kernels/common.ts).

import { MAX_PARAMS } from "../../kernels/common.ts";
import { BufferPool, TexturePool } from "./pool.ts";

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
  /** where in the buffer the binding starts (bytes, a multiple of BINDING_ALIGN) */
  offset?: number;
}

/**
 * An rgba32float texture: read as `texture_2d<f32>` (textureLoad), written as
 * `texture_storage_2d<rgba32float, write>`. On llvmpipe a texel fetch is a vectorised gather, while
 * a storage-buffer load loops over the SIMD lanes: 7-10x the floats per second (bench/RESULTS.md
 * step 56), which is why the matmul and the conv rows kernel may read their operands packed into
 * textures (tensor/ops/texture.ts).
 */
export interface TextureBinding {
  texture: GPUTexture;
}

const isTexture = (b: Binding | TextureBinding): b is TextureBinding => "texture" in b;

/** WebGPU lets a binding start at multiples of minStorageBufferOffsetAlignment, which is at most 256. */
export const BINDING_ALIGN = 256;

export interface Dispatch {
  name: string;
  code: string;
  params: ArrayLike<number> | Uint32Array;
  reads: (Binding | TextureBinding)[];
  writes: (Binding | TextureBinding)[];
  /** total threads (1-D) or explicit workgroup counts */
  threads?: number;
  /** threads per workgroup of a 1-D kernel (kernels/common.ts `main`), when not WORKGROUP */
  group?: number;
  workgroups?: [number, number, number];
  /** not a kernel but a copy into a texture, recorded in its place among the launches */
  copy?: TextureCopy;
}

/**
 * A buffer region copied into [width, height] texels of a texture from row `row` (default 0) on:
 * texel (x, row + y) = the 16 bytes at byteOffset + y * bytesPerRow + 16 x. On llvmpipe a
 * row-by-row memcpy, ~20x faster than packing with a kernel (bench/RESULTS.md step 61).
 */
export interface TextureCopy {
  buffer: GPUBuffer;
  byteOffset: number;
  bytesPerRow: number;
  texture: GPUTexture;
  size: [number, number];
  row?: number;
}

export const WORKGROUP = 64;
/** launches per timestamp query set while profiling */
const PROFILE_BATCH = 2048;

interface Profile {
  querySet: GPUQuerySet;
  names: string[];
  /** launch names and their [start, end] stamps, on their way back from the GPU */
  pending: { names: string[]; stamps: Promise<BigInt64Array> }[];
}
const ARENA_BYTES = 1 << 20;
/** every launch binds the whole uniform parameter array */
const PARAMS_BYTES = MAX_PARAMS * 4;

export class Runtime {
  readonly pool: BufferPool;
  readonly textures: TexturePool;
  #pipelines = new Map<string, GPUComputePipeline>();
  #layouts = new Map<string, GPUBindGroupLayout>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #profile: Profile | null = null;
  #arena: GPUBuffer;
  #arenaHost = new Uint32Array(ARENA_BYTES / 4);
  #arenaUsed = 0;
  #align: number;
  #error: string | null = null;
  #closing = false;
  dispatches = 0;
  submits = 0;

  private constructor(readonly device: GPUDevice, readonly adapter: AdapterReport) {
    this.pool = new BufferPool(device, device.limits.maxBufferSize);
    this.textures = new TexturePool(device);
    this.#arena = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#align = alignUp(PARAMS_BYTES, device.limits.minUniformBufferOffsetAlignment);
    device.addEventListener("uncapturederror", (e) => {
      this.#error ??= (e as GPUUncapturedErrorEvent).error.message;
    });
    device.lost.then((info) => this.#error ??= `device lost: ${info.message}`);
    // Deno frees a program's (or a test module's) GPU objects when it ends, and lavapipe may still be
    // running submitted work against them then (a CI run once died at exit with "corrupted size vs.
    // prev_size"). A program's event loop is held open until the queue is idle (`deno test` ends a
    // module without waiting); either way the device is destroyed in order before the isolate goes.
    globalThis.addEventListener("beforeunload", (e) => {
      if (this.#closing) return;
      this.#closing = true;
      e.preventDefault();
      device.queue.onSubmittedWorkDone().finally(() => device.destroy());
    });
    globalThis.addEventListener("unload", () => device.destroy());
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
      "maxTextureDimension2D",
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

  /**
   * Runs `call` with the launches it makes collected instead of run (those `keep` accepts; the
   * others run): its result and those launches, for the caller to run later, or to time.
   */
  recording<T>(call: () => T, keep: (d: Dispatch) => boolean = () => true): [T, Dispatch[]] {
    const mine: Dispatch[] = [], run = this.run;
    this.run = (d: Dispatch) => void (keep(d) ? mine.push(d) : run.call(this, d));
    try {
      return [call(), mine];
    } finally {
      this.run = run;
    }
  }

  /** Records one kernel launch after checking it against the device's limits. */
  run(d: Dispatch): void {
    const p = this.#profile;
    if (!p) return void this.#record(d, null);
    // profiling: each launch in its own pass, its start and end stamped into the current query set
    if (p.names.length === PROFILE_BATCH) this.#resolveProfile(p);
    const i = p.names.length;
    this.#endPass();
    const timestampWrites = {
      querySet: p.querySet,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    };
    if (this.#record(d, timestampWrites)) p.names.push(d.name);
    this.#endPass();
  }

  /**
   * Starts timing every launch on the GPU (timestamp queries; the adapter must offer them).
   * `stopProfile` returns GPU milliseconds and launch counts per kernel name, most expensive first.
   */
  startProfile(): void {
    if (!this.device.features.has("timestamp-query")) throw new Error("profiling needs timestamp queries");
    this.#profile ??= { querySet: this.#newQuerySet(), names: [], pending: [] };
  }

  async stopProfile(): Promise<{ name: string; launches: number; ms: number }[]> {
    const p = this.#profile;
    if (!p) return [];
    this.#profile = null;
    this.#resolveProfile(p);
    p.querySet.destroy();
    this.flush();
    const totals = new Map<string, { name: string; launches: number; ms: number }>();
    for (const { names, stamps } of p.pending) {
      const t = await stamps;
      names.forEach((name, i) => {
        const row = totals.get(name) ?? totals.set(name, { name, launches: 0, ms: 0 }).get(name)!;
        row.launches++;
        row.ms += Number(t[2 * i + 1] - t[2 * i]) / 1e6;
      });
    }
    return [...totals.values()].sort((a, b) => b.ms - a.ms);
  }

  #newQuerySet(): GPUQuerySet {
    return this.device.createQuerySet({ type: "timestamp", count: 2 * PROFILE_BATCH });
  }

  /** Sends the query set's stamps towards the host and starts a fresh set. */
  #resolveProfile(p: Profile): void {
    if (p.names.length > 0) {
      const querySet = p.querySet;
      p.pending.push({
        names: p.names,
        stamps: this.#readStamps(querySet, 2 * p.names.length).finally(() => querySet.destroy()),
      });
      p.querySet = this.#newQuerySet();
    }
    p.names = [];
  }

  /** Resolves the query set's first `count` timestamps and reads them back (submits what is pending). */
  #readStamps(querySet: GPUQuerySet, count: number): Promise<BigInt64Array> {
    const bytes = 8 * count;
    const resolved = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.#endPass();
    const enc = this.#encoderNow();
    enc.resolveQuerySet(querySet, 0, count, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    this.flush();
    return staging.mapAsync(GPUMapMode.READ).then(() => {
      const t = new BigInt64Array(staging.getMappedRange().slice(0));
      staging.destroy();
      resolved.destroy();
      return t;
    });
  }

  /**
   * Records each dispatch in its own timed pass and resolves to their GPU times in ms: from
   * timestamp queries where the adapter has them, else from queue completion (submits each).
   */
  timed(ds: Dispatch[]): Promise<number[]> {
    if (!this.device.features.has("timestamp-query")) {
      const marks: Promise<number>[] = [];
      this.flush();
      let last = this.device.queue.onSubmittedWorkDone().then(() => performance.now());
      for (const d of ds) {
        this.#record(d, null);
        this.flush();
        marks.push(last);
        last = this.device.queue.onSubmittedWorkDone().then(() => performance.now());
      }
      return Promise.all([...marks, last]).then((t) => ds.map((_, i) => t[i + 1] - t[i]));
    }
    const querySet = this.device.createQuerySet({ type: "timestamp", count: 2 * ds.length });
    ds.forEach((d, i) => {
      this.#endPass();
      this.#record(d, { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 });
      this.#endPass();
    });
    return this.#readStamps(querySet, 2 * ds.length).then((t) => {
      querySet.destroy();
      return ds.map((d, i) => (d.copy ? 0 : Number(t[2 * i + 1] - t[2 * i]) / 1e6));
    });
  }

  #record(d: Dispatch, timestampWrites: GPUComputePassTimestampWrites | null): boolean {
    this.#throwIfFailed();
    if (d.copy) {
      this.#copy(d.copy);
      return false; // not a launch: its query slots stay unwritten
    }
    const lim = this.device.limits;
    const bindings = [...d.reads, ...d.writes];
    const count = (kinds: (Binding | TextureBinding)[], texture: boolean) =>
      kinds.filter((b) => isTexture(b) === texture).length;
    for (
      const [n, limit] of [
        [count(bindings, false), "maxStorageBuffersPerShaderStage"],
        [count(d.reads, true), "maxSampledTexturesPerShaderStage"],
        [count(d.writes, true), "maxStorageTexturesPerShaderStage"],
      ] as const
    ) {
      if (n > lim[limit]) throw new Error(`${d.name}: ${n} bindings > ${limit} ${lim[limit]}`);
    }
    for (const b of bindings) {
      if (!isTexture(b) && b.bytes > lim.maxStorageBufferBindingSize) {
        throw new Error(
          `${d.name}: binding of ${b.bytes} bytes > maxStorageBufferBindingSize ${lim.maxStorageBufferBindingSize}`,
        );
      }
    }
    const groups = d.workgroups ?? this.#grid(d.name, d.threads ?? 0, d.group);
    if (groups.some((g) => g > lim.maxComputeWorkgroupsPerDimension)) {
      throw new Error(`${d.name}: workgroups [${groups}] > limit ${lim.maxComputeWorkgroupsPerDimension}`);
    }
    if (groups.some((g) => g === 0)) return false;
    const paramsOffset = this.#stage(d.params);
    const pipeline = this.#pipeline(d.name, d.code, d.reads.map(isTexture), d.writes.map(isTexture));
    const entries: GPUBindGroupEntry[] = [
      {
        binding: 0,
        resource: { buffer: this.#arena, offset: paramsOffset, size: PARAMS_BYTES },
      },
    ];
    for (const [i, b] of bindings.entries()) {
      if (isTexture(b)) {
        entries.push({ binding: i + 1, resource: b.texture.createView() });
        continue;
      }
      const offset = b.offset ?? 0;
      if (offset % lim.minStorageBufferOffsetAlignment || offset >= b.buffer.size) {
        throw new Error(
          `${d.name}: binding ${i + 1} starts at byte ${offset}, not an aligned place in its buffer`,
        );
      }
      // 16-byte multiples so vec4 arrays bind; pool buffers are at least that large
      const size = Math.min(b.buffer.size - offset, Math.max(16, alignUp(b.bytes, 16)));
      entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset, size } });
    }
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = timestampWrites
      ? this.#encoderNow().beginComputePass({ timestampWrites })
      : this.#computePass();
    if (timestampWrites) this.#pass = pass;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...groups);
    this.dispatches++;
    return true;
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

  /** Records a copy into a texture (a Dispatch's `copy`) after checking WebGPU's rules for it. */
  #copy({ buffer, byteOffset, bytesPerRow, texture, size: [width, height], row = 0 }: TextureCopy): void {
    const end = byteOffset + bytesPerRow * (height - 1) + 16 * width;
    if (
      byteOffset % 16 || bytesPerRow % 256 || end > buffer.size || width > texture.width ||
      row + height > texture.height
    ) {
      throw new Error(
        `copy to texture: ${width} x ${height} texels to row ${row} from byte ${byteOffset}, ${bytesPerRow} per row, ` +
          `break the rules or overrun a ${buffer.size}-byte buffer or a ${texture.width} x ${texture.height} texture`,
      );
    }
    this.#endPass();
    const source = { buffer, offset: byteOffset, bytesPerRow };
    this.#encoderNow().copyBufferToTexture(source, { texture, origin: [0, row] }, [width, height]);
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

  /** Submits what is recorded; resolves when the queue has run it (and all before it). */
  done(): Promise<void> {
    this.flush();
    return this.device.queue.onSubmittedWorkDone().then(() => this.#throwIfFailed());
  }

  #throwIfFailed(): void {
    if (this.#error) throw new Error(`WebGPU error: ${this.#error}`);
  }

  #grid(name: string, threads: number, group = WORKGROUP): [number, number, number] {
    const groups = Math.ceil(threads / group);
    const maxX = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= maxX) return [groups, 1, 1];
    const y = Math.ceil(groups / maxX);
    if (y > maxX) throw new Error(`${name}: ${threads} threads exceed the dispatch grid`);
    return [Math.ceil(groups / y), y, 1];
  }

  #stage(params: ArrayLike<number>): number {
    if (params.length > MAX_PARAMS) throw new Error(`${params.length} kernel parameters > ${MAX_PARAMS}`);
    const bytes = this.#align;
    if (this.#arenaUsed + bytes > ARENA_BYTES) this.flush();
    const offset = this.#arenaUsed;
    this.#arenaHost.set(params, offset / 4);
    this.#arenaUsed += bytes;
    this.#encoderNow();
    return offset;
  }

  /** `reads` and `writes` say which bindings are textures. */
  #pipeline(name: string, code: string, reads: boolean[], writes: boolean[]): GPUComputePipeline {
    let p = this.#pipelines.get(code);
    if (p) return p;
    const flag = (texture: boolean) => (texture ? "t" : "b");
    const layoutKey = `${reads.map(flag).join("")}:${writes.map(flag).join("")}`;
    let layout = this.#layouts.get(layoutKey);
    if (!layout) {
      const visibility = GPUShaderStage.COMPUTE;
      const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility, buffer: { type: "uniform" } }];
      reads.forEach((texture, i) =>
        entries.push(
          texture
            ? { binding: i + 1, visibility, texture: { sampleType: "unfilterable-float" } }
            : { binding: i + 1, visibility, buffer: { type: "read-only-storage" } },
        )
      );
      writes.forEach((texture, i) =>
        entries.push(
          texture
            ? {
              binding: reads.length + i + 1,
              visibility,
              storageTexture: { access: "write-only", format: "rgba32float" },
            }
            : { binding: reads.length + i + 1, visibility, buffer: { type: "storage" } },
        )
      );
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
