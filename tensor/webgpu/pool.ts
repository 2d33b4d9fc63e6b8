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
