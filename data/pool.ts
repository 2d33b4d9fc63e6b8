// A fixed pool of decode workers, one job each at a time. A job that outlives its timeout (a pathological
// file wedging the codec) costs its worker, which is replaced: the pool itself never hangs. The timeout
// counts only time this thread was awake to hear the answer: a training step that blocks it (llvmpipe
// compiling a pipeline can take seconds) must not fail decodes that finished meanwhile.
import type { DecodeJob, DecodeResult } from "./decode_job.ts";

interface Pending {
  job: DecodeJob;
  transfer: boolean;
  resolve: (r: DecodeResult) => void;
}

interface Slot {
  worker: Worker;
  busy?: Pending;
  timer?: ReturnType<typeof setTimeout>;
}

/** How late a timer may fire before it counts as the thread having been blocked. */
const LATE_MS = 250;

export class DecodePool {
  readonly size: number;
  #slots: Slot[] = [];
  #queue: Pending[] = [];
  #closed = false;

  constructor(
    size = navigator.hardwareConcurrency,
    readonly timeoutMs = 30_000,
    /** the worker script (tests give a stand-in that can wedge) */
    readonly workerUrl = new URL("./decode_worker.ts", import.meta.url).href,
  ) {
    this.size = Math.max(1, size);
    for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
  }

  /** Jobs waiting for a worker. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Decode in a worker. With `transfer`, the bytes' buffer moves to the worker and is unusable here. */
  run(job: DecodeJob, transfer = false): Promise<DecodeResult> {
    if (this.#closed) {
      return Promise.resolve({ id: job.id, ok: false, reason: "decode_error", message: "closed" });
    }
    return new Promise((resolve) => {
      this.#queue.push({ job, transfer, resolve });
      this.#dispatch();
    });
  }

  [Symbol.dispose]() {
    this.close();
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots) {
      clearTimeout(slot.timer);
      slot.worker.terminate();
      slot.busy?.resolve({ id: slot.busy.job.id, ok: false, reason: "decode_error", message: "pool closed" });
    }
    for (const p of this.#queue.splice(0)) {
      p.resolve({ id: p.job.id, ok: false, reason: "decode_error", message: "pool closed" });
    }
  }

  #spawn(): Slot {
    const worker = new Worker(this.workerUrl, { type: "module" });
    const slot: Slot = { worker };
    worker.onmessage = (e: MessageEvent<DecodeResult>) => this.#finish(slot, e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.#replace(slot, `worker crashed: ${e.message}`);
    };
    return slot;
  }

  #dispatch() {
    for (const slot of this.#slots) {
      if (slot.busy || !this.#queue.length) continue;
      const pending = slot.busy = this.#queue.shift()!;
      this.#arm(slot, this.timeoutMs);
      const buffer = pending.job.bytes.buffer as ArrayBuffer;
      slot.worker.postMessage(pending.job, pending.transfer ? [buffer] : []);
    }
  }

  /**
   * The job's deadline, `ms` of this thread's time away. A timer that fires late means the thread was
   * blocked, and the worker's answer may be queued behind it: the time lost is granted again.
   */
  #arm(slot: Slot, ms: number) {
    const due = performance.now() + ms;
    slot.timer = setTimeout(() => {
      const late = performance.now() - due;
      if (late > LATE_MS) this.#arm(slot, late);
      else this.#replace(slot, `decode took over ${this.timeoutMs} ms`);
    }, ms);
  }

  #finish(slot: Slot, result: DecodeResult) {
    clearTimeout(slot.timer);
    const pending = slot.busy;
    slot.busy = undefined;
    pending?.resolve(result);
    this.#dispatch();
  }

  #replace(slot: Slot, message: string) {
    slot.worker.terminate();
    const fresh = this.#spawn();
    const i = this.#slots.indexOf(slot);
    if (i >= 0 && !this.#closed) this.#slots[i] = fresh;
    else fresh.worker.terminate();
    this.#finish(slot, { id: slot.busy?.job.id ?? -1, ok: false, reason: "decode_error", message });
  }
}
