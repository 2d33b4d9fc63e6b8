// The Tensor: a strided view of a Storage plus the autograd record of how it was made.
//
// Autograd is reverse-mode over a DAG of `Node`s. Each op (tensor/ops/*) computes its forward with
// a kernel and returns `fromOp(...)` with a closure mapping the output's gradient to its inputs'.
// `backward()` walks the graph once in reverse topological order, frees it, and accumulates into
// `.grad` of the leaves that require it. Backward closures run without recording, so gradients are
// first-order only.
//
// GPU memory has explicit owners: `tidy(fn)` disposes every tensor created inside `fn` except what
// it returns; `dispose()` frees one tensor now; `keep()` takes a tensor out of its scope (parameters,
// gradients and optimizer state are kept).

import { contiguousStrides, isContiguous, numel, Shape } from "./shape.ts";
import { type Device, type DType, type HostArray, readStorage, Storage } from "./storage.ts";

export interface Node {
  op: string;
  inputs: Tensor[];
  backward: (grad: Tensor) => (Tensor | Part | null)[];
}

/**
 * A gradient that is zero outside one box of its input, as a slice's is: `grad` holds the box,
 * which starts at `starts`. The engine adds it into place in the input's gradient rather than
 * padding it to full size and summing: q, k and v sliced from one packed projection get one
 * gradient buffer, filled once, instead of three zero-padded copies and two full-size adds.
 */
export interface Part {
  grad: Tensor;
  starts: number[];
}

type Scope = Set<Tensor>;
const scopes: Scope[] = [];
let gradEnabled = true;

export class Tensor {
  requiresGrad = false;
  grad: Tensor | null = null;
  node: Node | null = null;
  #disposed = false;
  #scope: Scope | null;

  #storage: Storage;
  #offset: number;

  constructor(
    storage: Storage,
    readonly shape: Shape,
    readonly strides: Shape = contiguousStrides(shape),
    offset = 0,
  ) {
    this.#storage = storage;
    this.#offset = offset;
    this.#scope = scopes.at(-1) ?? null;
    this.#scope?.add(this);
  }

  get storage(): Storage {
    return this.#storage;
  }
  get offset(): number {
    return this.#offset;
  }

  /**
   * Moves a contiguous tensor into `storage` at `offset` (the caller copies the values): how
   * parameters join an optimizer's flat buffers. Views taken earlier keep the old storage.
   */
  relocate(storage: Storage, offset: number): void {
    this.assertLive();
    if (!this.isContiguous) throw new Error("relocate: only contiguous tensors move");
    if (
      storage.device !== this.device || storage.dtype !== this.dtype || offset + this.size > storage.length
    ) {
      throw new Error(
        `relocate: [${this.shape}] does not fit at ${offset} of a ${storage.length}-element storage`,
      );
    }
    storage.retain();
    this.#storage.release();
    this.#storage = storage;
    this.#offset = offset;
  }

  get device(): Device {
    return this.storage.device;
  }
  get dtype(): DType {
    return this.storage.dtype;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Same data, new shape/strides; the view shares (and co-owns) the storage. */
  view(shape: Shape, strides: Shape = contiguousStrides(shape), offset = this.offset): Tensor {
    this.assertLive();
    return new Tensor(this.storage.retain(), shape, strides, offset);
  }

  /** Row-major copy of the values on the host (f64 stays f64, i32 stays i32). */
  async toArray(): Promise<HostArray> {
    this.assertLive();
    if (this.isContiguous) return readStorage(this.storage, this.offset, this.size);
    const { contiguous } = await import("./ops/movement.ts");
    const c = noGrad(() => contiguous(this));
    try {
      return await readStorage(c.storage, c.offset, c.size);
    } finally {
      if (c !== this) c.dispose();
    }
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item() needs a single element, tensor has shape [${this.shape}]`);
    return (await this.toArray())[0];
  }

  /** A tensor with the same data and no graph history. */
  detach(): Tensor {
    return this.view(this.shape, this.strides);
  }

  /** Takes this tensor out of any `tidy` scope; its owner must dispose it. */
  keep(): this {
    this.#scope?.delete(this);
    this.#scope = null;
    return this;
  }

  /** Moves an unscoped tensor into `scope` (used by tidy for the values it returns). */
  adopt(scope: Scope): void {
    this.#scope = scope;
    scope.add(this);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#scope?.delete(this);
    this.node = null;
    this.storage.release();
  }

  assertLive(): void {
    if (this.#disposed) throw new Error(`tensor of shape [${this.shape}] used after dispose()`);
  }

  /** Accumulates d(this)/d(leaf) into every leaf's `.grad`; `this` must be a scalar unless `grad` is given. */
  backward(grad?: Tensor): void {
    if (!this.requiresGrad) throw new Error("backward() on a tensor that does not require grad");
    if (!grad && this.size !== 1) {
      throw new Error(`backward() needs a gradient for non-scalar shape [${this.shape}]`);
    }
    const order = topoSort(this);
    const grads = new Map<Tensor, Tensor>();
    const owned = new Set<Tensor>(); // gradients made here for parts, so written in place
    grads.set(this, grad ?? onesLike(this));
    for (const t of order) {
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      if (!t.node) {
        accumulate(t, g);
        continue;
      }
      const node = t.node;
      const inGrads = tidy(() => noGrad(() => node.backward(g)));
      // A closure may pass `g` through or return one tensor twice: give each input its own view.
      const used = new Set<Tensor>();
      node.inputs.forEach((x, i) => {
        let gi = inGrads[i];
        if (!gi || !x.requiresGrad) return;
        if (!(gi instanceof Tensor)) return grads.set(x, addPart(grads.get(x), gi, x, owned));
        if (gi === g || used.has(gi)) gi = gi.detach().keep();
        used.add(gi);
        const prev = grads.get(x);
        grads.set(x, prev ? sumInto(prev, gi) : gi);
      });
      for (const gi of inGrads) {
        const held = gi instanceof Tensor ? gi : gi?.grad;
        if (held && held !== g && !used.has(held)) held.dispose();
      }
      if (g !== grad) g.dispose();
      t.node = null; // the graph is freed as it is consumed
    }
  }
}

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [], seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, done] = stack.pop()!;
    if (done) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const x of t.node?.inputs ?? []) if (x.requiresGrad && !seen.has(x)) stack.push([x, false]);
  }
  return order.reverse();
}

/** The ops the engine needs, wired by ops/mod.ts: the engine must not import the op modules. */
interface EngineOps {
  add(a: Tensor, b: Tensor): Tensor;
  ones(like: Tensor): Tensor;
  zeros(like: Tensor): Tensor;
  /** dst := src through the view dst, and dst += src; no autograd */
  copyInto(dst: Tensor, src: Tensor): void;
  addInto(dst: Tensor, src: Tensor): void;
}
let ops: EngineOps;
export function wireEngine(o: EngineOps): void {
  ops = o;
}

function onesLike(t: Tensor): Tensor {
  return noGrad(() => ops.ones(t));
}

function sumInto(a: Tensor, b: Tensor): Tensor {
  const s = noGrad(() => ops.add(a, b));
  a.dispose();
  b.dispose();
  return s;
}

/**
 * prev (x's gradient so far, if any) plus a part: added in place into a gradient this pass made for
 * parts, otherwise into a fresh zeroed (or copied) one, which is then the pass's own. A gradient
 * from elsewhere is never written: it may be a view that another input's gradient shares.
 */
function addPart(prev: Tensor | undefined, { grad, starts }: Part, x: Tensor, owned: Set<Tensor>): Tensor {
  return noGrad(() => {
    let acc = prev;
    if (!acc || !owned.has(acc)) {
      acc = ops.zeros(x);
      if (prev) ops.copyInto(acc, prev);
      prev?.dispose();
      owned.add(acc);
    }
    const at = starts.reduce((o, s, d) => o + s * acc!.strides[d], acc.offset);
    const box = acc.view(grad.shape, acc.strides, at);
    if (prev) ops.addInto(box, grad);
    else ops.copyInto(box, grad);
    box.dispose();
    return acc;
  });
}

function accumulate(leaf: Tensor, g: Tensor): void {
  leaf.grad = (leaf.grad ? sumInto(leaf.grad, g) : g).keep();
}

/** Wraps a kernel's output; records the op for autograd when any input requires grad. */
export function fromOp(
  op: string,
  out: Tensor,
  inputs: Tensor[],
  backward: Node["backward"],
): Tensor {
  for (const x of inputs) x.assertLive();
  if (gradEnabled && inputs.some((x) => x.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/** Runs `fn` without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns (a tensor, or arrays /
 * plain objects of them), which move to the enclosing scope. Synchronous by design: an `await`
 * inside would let other code's tensors land in this scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = new Set();
  scopes.push(scope);
  let out: T;
  try {
    out = fn();
  } finally {
    scopes.pop();
  }
  if (out instanceof Promise) throw new Error("tidy(fn): fn must be synchronous");
  const survivors = new Set<Tensor>();
  collect(out, survivors);
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (survivors.has(t)) {
      t.keep();
      if (parent) t.adopt(parent);
    } else t.dispose();
  }
  return out;
}

function collect(v: unknown, into: Set<Tensor>): void {
  if (v instanceof Tensor) into.add(v);
  else if (Array.isArray(v)) { for (const x of v) collect(x, into); }
  else if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    for (const x of Object.values(v)) collect(x, into);
  }
}
