// Module: a tree of named parameters and buffers with PyTorch's dotted names ("layer1.0.conv1.weight"),
// so state dicts written by PyTorch load unchanged.

import { tensor } from "../create.ts";
import { copyInto } from "../ops/elementwise.ts";
import { Tensor } from "../tensor.ts";
import type { RawTensor } from "../io/safetensors.ts";

export type StateDict = Map<string, Tensor>;

export class Module {
  training = true;
  #params = new Map<string, Tensor>();
  #buffers = new Map<string, Tensor>();

  /** Registers a trainable tensor; the module owns it from now on. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.#params.set(name, t.keep());
    return t;
  }

  /** Registers state that is saved and loaded but not trained (running statistics). */
  protected buffer(name: string, t: Tensor): Tensor {
    this.#buffers.set(name, t.keep());
    return t;
  }

  /** Child modules by name: module-valued properties, and arrays of modules as name.0, name.1... */
  children(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) out.push([k, v]);
      else if (Array.isArray(v) && v.length && v.every((m) => m instanceof Module)) {
        v.forEach((m, i) => out.push([`${k}.${i}`, m]));
      }
    }
    return out;
  }

  namedParameters(prefix = ""): [string, Tensor][] {
    return [
      ...[...this.#params].map(([k, t]): [string, Tensor] => [prefix + k, t]),
      ...this.children().flatMap(([k, m]) => m.namedParameters(`${prefix}${k}.`)),
    ];
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ""): [string, Tensor][] {
    return [
      ...[...this.#buffers].map(([k, t]): [string, Tensor] => [prefix + k, t]),
      ...this.children().flatMap(([k, m]) => m.namedBuffers(`${prefix}${k}.`)),
    ];
  }

  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(): StateDict {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values in by name. Shape or dtype mismatches always fail; with `strict` (default) so do
   * missing and unexpected keys. The error lists every problem at once.
   */
  loadStateDict(
    dict: Map<string, Tensor | RawTensor> | Record<string, Tensor | RawTensor>,
    { strict = true } = {},
  ): { missing: string[]; unexpected: string[] } {
    const given = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of own) {
      const v = given.get(k);
      if (!v) continue;
      const dtype = v instanceof Tensor ? v.dtype : v.data instanceof Int32Array ? "i32" : "float";
      const floatish = (d: string) => d !== "i32";
      if (v.shape.join() !== t.shape.join() || floatish(dtype) !== floatish(t.dtype)) {
        mismatched.push(`${k}: expected [${t.shape}] ${t.dtype}, got [${v.shape}] ${dtype}`);
      }
    }
    const problems = [
      mismatched.length ? `mismatched: ${mismatched.join("; ")}` : "",
      strict && missing.length ? `missing: ${missing.join(", ")}` : "",
      strict && unexpected.length ? `unexpected: ${unexpected.join(", ")}` : "",
    ].filter(Boolean);
    if (problems.length) throw new Error(`loadStateDict: ${problems.join(" | ")}`);
    for (const [k, t] of own) {
      const v = given.get(k);
      if (!v) continue;
      const src = v instanceof Tensor && v.device === t.device && v.dtype === t.dtype
        ? v
        : tensor(v instanceof Tensor ? hostOf(v) : v.data, t.shape, { device: t.device, dtype: t.dtype });
      copyInto(t, src);
      if (src !== v) src.dispose();
    }
    return { missing, unexpected };
  }

  train(mode = true): this {
    this.training = mode;
    for (const [, m] of this.children()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees every parameter, buffer and gradient. */
  dispose(): void {
    this.zeroGrad();
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }
}

function hostOf(t: Tensor): ArrayLike<number> {
  if (!t.storage.host || !t.isContiguous) {
    throw new Error("loadStateDict: tensors from another device must be given as host data (RawTensor)");
  }
  return t.storage.host.subarray(t.offset, t.offset + t.size);
}
