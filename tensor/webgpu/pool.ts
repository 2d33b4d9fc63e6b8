// GPU buffers are not garbage-collected: every one is either live (owned by a Storage) or pooled
// here for reuse. Sizes round up to classes 2^k and 1.5 * 2^k, so a buffer fits many requests
// while wasting at most a third.
//
// A buffer released since the last submit may still be read by commands not yet submitted, so it
// is "dirty": kernels may reuse it (their commands run after those), but a host upload may not,
// because queue.writeBuffer runs before the pending commands. `submitted()` makes dirty clean.

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  return bytes <= 0.75 * p ? 0.75 * p : p;
}

export class BufferPool {
  #clean = new Map<number, GPUBuffer[]>();
  #dirty = new Map<number, GPUBuffer[]>();
  liveBytes = 0;
  pooledBytes = 0;

  constructor(private device: GPUDevice, private maxBufferSize: number) {}

  acquire(bytes: number, forUpload = false): GPUBuffer {
    const size = sizeClass(bytes);
    if (size > this.maxBufferSize) {
      throw new Error(`buffer of ${bytes} bytes exceeds the adapter's maxBufferSize ${this.maxBufferSize}`);
    }
    const buf = this.#clean.get(size)?.pop() ?? (forUpload ? undefined : this.#dirty.get(size)?.pop());
    this.liveBytes += size;
    if (buf) {
      this.pooledBytes -= size;
      return buf;
    }
    return this.device.createBuffer({ size, usage: USAGE });
  }

  release(buf: GPUBuffer): void {
    const list = this.#dirty.get(buf.size) ?? [];
    list.push(buf);
    this.#dirty.set(buf.size, list);
    this.liveBytes -= buf.size;
    this.pooledBytes += buf.size;
  }

  submitted(): void {
    for (const [size, list] of this.#dirty) {
      const clean = this.#clean.get(size) ?? [];
      this.#clean.set(size, clean.concat(list));
    }
    this.#dirty.clear();
  }

  /** Frees every pooled buffer (live ones are untouched). Call after a flush. */
  trim(): void {
    for (const list of this.#clean.values()) for (const b of list) b.destroy();
    this.#clean.clear();
    this.pooledBytes = [...this.#dirty.values()].flat().reduce((s, b) => s + b.size, 0);
  }
}

/**
 * Scratch textures (rgba32float, sampled and written as storage), pooled by size. Only kernels
 * write them, and commands run in the order they were recorded, so a released texture may be
 * handed to the next kernel at once. Sides round up to classes like buffer sizes (2^k, 1.5 * 2^k),
 * so calls of varying shape (decoding, evaluation batches) share textures; kernels address only
 * the texels they asked for.
 */
export class TexturePool {
  #free = new Map<string, GPUTexture[]>();
  liveBytes = 0;
  pooledBytes = 0;

  constructor(private device: GPUDevice) {}

  acquire(width: number, height: number): GPUTexture {
    const dim = this.device.limits.maxTextureDimension2D;
    if (width > dim || height > dim) {
      throw new Error(`texture of ${width} x ${height} texels exceeds maxTextureDimension2D ${dim}`);
    }
    const [w, h] = [width, height].map((n) => Math.min(dim, sideClass(n)));
    const bytes = w * h * 16;
    this.liveBytes += bytes;
    const t = this.#free.get(`${w}x${h}`)?.pop();
    if (t) {
      this.pooledBytes -= bytes;
      return t;
    }
    const texture = this.device.createTexture({
      size: [w, h],
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
    // Written once from the host, so WebGPU need not clear it lazily inside the first pass that
    // uses it: on lavapipe such a clear left the timestamps of every pass in that command buffer
    // meaningless (a 512^3 matmul timed at 0.02 ms), which the tuner measures by.
    this.device.queue.writeTexture({ texture }, new Float32Array(w * h * 4), {
      bytesPerRow: w * 16,
      rowsPerImage: h,
    }, [w, h]);
    return texture;
  }

  release(t: GPUTexture): void {
    const key = `${t.width}x${t.height}`, bytes = t.width * t.height * 16;
    const list = this.#free.get(key) ?? this.#free.set(key, []).get(key)!;
    list.push(t);
    this.liveBytes -= bytes;
    this.pooledBytes += bytes;
  }
}

/** The smallest 2^k or 1.5 * 2^k that is at least n (n itself up to 4). */
function sideClass(n: number): number {
  if (n <= 4) return n;
  const p = 2 ** Math.ceil(Math.log2(n));
  return n <= 0.75 * p ? 0.75 * p : p;
}
