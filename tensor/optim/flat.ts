// Flat optimizer buffers. An optimizer's parameters move into a few large buffers (buckets, each
// no larger than one kernel binding may be), and their gradients and moment estimates are laid out
// the same way beside them, so one launch per bucket updates every parameter, and one reduction
// per bucket measures the gradients' norm. The model keeps its parameter tensors: each becomes a
// view into its bucket (Tensor.relocate), at an offset aligned for a binding of its own
// (ops/movement.ts `dense`), so kernels that read a parameter as a dense array still read it in place.
//
// Gradients arrive from autograd as tensors of their own; gather() packs them into the bucket's
// gradient buffer, up to 6 per launch (kernels/gather.ts).

import { GATHER_GROUPS, gatherWGSL, SOURCE_WORDS, SOURCES } from "../../kernels/gather.ts";
import { shapeWords, viewWords } from "../../kernels/common.ts";
import { zeros } from "../create.ts";
import { copyInto } from "../ops/elementwise.ts";
import { forEachOffset } from "../strided.ts";
import { gpu } from "../storage.ts";
import { BINDING_ALIGN } from "../webgpu/runtime.ts";
import type { Tensor } from "../tensor.ts";

/** Element alignment of each parameter in its bucket: where a binding may start. */
const ALIGN = BINDING_ALIGN / 4;

interface Entry {
  p: Tensor;
  group: number;
  /** element offset in the bucket */
  at: number;
}

export interface Bucket {
  entries: Entry[];
  /** the bucket's flat buffers, [size] each */
  params: Tensor;
  grads: Tensor;
  slots: Record<string, Tensor>;
}

/** A run [start, end) of one bucket whose elements all belong to `group` and have a gradient. */
export interface Segment {
  start: number;
  end: number;
  group: number;
}

const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Parameters living in some optimizer's buckets: a second optimizer would update a stale copy. */
const placed = new WeakSet<Tensor>();

export class FlatParams {
  readonly buckets: Bucket[] = [];
  #views = new Map<Tensor, Record<string, Tensor>>();

  /** `groups[g]` lists group g's parameters; `slots` names the state buffers (e.g. "m", "v"). */
  constructor(groups: Tensor[][], readonly slotNames: string[], bucketElements = Infinity) {
    const all = groups.flatMap((ps, group) => ps.map((p) => ({ p, group })));
    if (all.length === 0) return;
    const { device, dtype } = all[0].p;
    for (const { p } of all) {
      if (p.device !== device || p.dtype !== dtype) {
        throw new Error(
          `optimizer parameters must share one device and dtype (${device} ${dtype}, got ${p.device} ${p.dtype})`,
        );
      }
      if (!p.isContiguous) throw new Error(`optimizer parameter [${p.shape}] is not contiguous`);
      if (placed.has(p)) {
        throw new Error(
          `parameter [${p.shape}] already belongs to another optimizer (dispose that one first)`,
        );
      }
    }
    const binding = device === "webgpu" ? gpu().device.limits.maxStorageBufferBindingSize / 4 : Infinity;
    const limit = Math.max(ALIGN, Math.floor(Math.min(binding, bucketElements) / ALIGN) * ALIGN);
    let open: Entry[] = [], used = 0;
    const close = () => {
      if (open.length) this.#makeBucket(open, used);
      open = [], used = 0;
    };
    for (const { p, group } of all) {
      if (p.size > limit) {
        throw new Error(`parameter [${p.shape}] is larger than one binding (${limit} floats)`);
      }
      if (used + p.size > limit) close();
      open.push({ p, group, at: used });
      used = alignUp(used + p.size);
    }
    close();
  }

  #makeBucket(entries: Entry[], size: number): void {
    const { device, dtype } = entries[0].p, opts = { device, dtype };
    const b: Bucket = {
      entries,
      params: zeros([size], opts).keep(),
      grads: zeros([size], opts).keep(),
      slots: Object.fromEntries(this.slotNames.map((n) => [n, zeros([size], opts).keep()])),
    };
    for (const { p, at } of entries) {
      const place = b.params.view(p.shape, undefined, at);
      copyInto(place, p);
      place.dispose();
      p.relocate(b.params.storage, at);
      placed.add(p);
      this.#views.set(
        p,
        Object.fromEntries(this.slotNames.map((n) => [n, b.slots[n].view(p.shape, undefined, at).keep()])),
      );
    }
    this.buckets.push(b);
  }

  /** p's state buffer `name`: a view into its bucket, owned here (write into it, don't dispose it). */
  slot(p: Tensor, name: string): Tensor {
    const s = this.#views.get(p)?.[name];
    if (!s) throw new Error(`no optimizer state "${name}" for a parameter of shape [${p.shape}]`);
    return s;
  }

  /**
   * Packs every parameter's gradient into its bucket's gradient buffer; returns, per bucket, the
   * segments to update (parameters without a gradient are left out, as torch.optim skips them).
   */
  gather(): Segment[][] {
    return this.buckets.map((b) => {
      const withGrad = b.entries.filter((e) => e.p.grad);
      if (b.grads.device === "cpu") {
        const dst = b.grads.storage.host!;
        for (const { p, at } of withGrad) {
          const g = p.grad!, src = g.storage.host!;
          forEachOffset(g.shape, [g], (i, [o]) => dst[at + i] = src[o]);
        }
      } else {
        // sources of similar sizes share a launch: its grid is as wide as the largest needs
        const bySize = withGrad.toSorted((x, y) => x.p.size - y.p.size);
        for (let i = 0; i < bySize.length; i += SOURCES) {
          this.#gatherLaunch(b, bySize.slice(i, i + SOURCES));
        }
      }
      const segments: Segment[] = [];
      for (const { p, at, group } of withGrad) {
        const last = segments.at(-1);
        // alignment gaps between neighbours are updated too: their gradient and state stay 0
        if (last && last.group === group && alignUp(last.end) === at) last.end = at + p.size;
        else segments.push({ start: at, end: at + p.size, group });
      }
      return segments;
    });
  }

  #gatherLaunch(b: Bucket, entries: Entry[]): void {
    const params: number[] = [];
    for (const { p, at } of entries) {
      const g = p.grad!;
      if (g.shape.join() !== p.shape.join()) {
        throw new Error(`gradient [${g.shape}] does not match its parameter [${p.shape}]`);
      }
      params.push(g.size, at, ...shapeWords(g.shape), ...viewWords(g));
    }
    if (params.length !== entries.length * SOURCE_WORDS) throw new Error("internal: gather params");
    const largest = Math.max(...entries.map((e) => e.p.size));
    gpu().run({
      name: "gather_flat",
      code: gatherWGSL(entries.map((e) => !e.p.grad!.isContiguous)),
      params,
      reads: entries.map((e) => e.p.grad!.storage.binding),
      writes: [b.grads.storage.binding],
      // at least 4 elements per thread: llvmpipe pays for every workgroup it starts
      workgroups: [Math.min(GATHER_GROUPS, Math.ceil(largest / 256)), entries.length, 1],
    });
  }

  dispose(): void {
    for (const [p, views] of this.#views) {
      placed.delete(p);
      for (const t of Object.values(views)) t.dispose();
    }
    this.#views.clear();
    for (const b of this.buckets) {
      for (const t of [b.params, b.grads, ...Object.values(b.slots)]) t.dispose();
    }
    this.buckets.length = 0;
  }
}
