// Kernel variants and how one is chosen for a call.
//
// An op with several kernels lists them here. `choose` picks one for the call's shape class:
// a forced choice (tests run every variant), else the tuned winner for this adapter if known,
// else the default for the adapter class (fallback CPU adapters want register blocking; real
// GPUs want workgroup tiles).

import type { GemmConfig } from "../../kernels/gemm.ts";
import { gpu } from "../storage.ts";

export interface Variant {
  name: string;
  gemm?: GemmConfig;
  /** rows per thread of the vec4 matmul */
  vec4Rows?: number;
}

export const VARIANTS: Record<string, Variant[]> = {
  matmul: [
    { name: "naive" },
    { name: "vec4x4", vec4Rows: 4 },
    { name: "vec4x8", vec4Rows: 8 },
    { name: "blocked4x4", gemm: { tm: 4, tn: 4, wx: 8, wy: 8 } },
    { name: "blocked1x4", gemm: { tm: 1, tn: 4, wx: 64, wy: 1 } },
    { name: "blocked4x8", gemm: { tm: 4, tn: 8, wx: 8, wy: 8 } },
  ],
  conv2d: [
    { name: "direct" },
    { name: "gemm4x4", gemm: { tm: 4, tn: 4, wx: 8, wy: 8 } },
    { name: "gemm4x8", gemm: { tm: 4, tn: 8, wx: 8, wy: 8 } },
    { name: "gemm8x4", gemm: { tm: 8, tn: 4, wx: 8, wy: 8 } },
  ],
};

const forced = new Map<string, string>();

/** Forces `op` to use the named variant (null: automatic again). For tests and benchmarks. */
export function forceVariant(op: string, name: string | null): void {
  if (name === null) forced.delete(op);
  else if (!VARIANTS[op]?.some((v) => v.name === name)) throw new Error(`no variant ${name} of ${op}`);
  else forced.set(op, name);
}

/**
 * The variant for this call among those that `fit` it: forced, else tuned, else the default for the
 * adapter class. A forced variant that does not fit the call falls back to the automatic choice.
 */
export function choose(op: string, dims: { M: number; N: number; K: number }, fits: (v: Variant) => boolean): Variant {
  const list = VARIANTS[op].filter(fits);
  const f = forced.get(op);
  return list.find((v) => v.name === f) ?? list.find((v) => v.name === defaultFor(op, dims, list))!;
}

function defaultFor(op: string, { M }: { M: number; N: number; K: number }, fitting: Variant[]): string {
  void gpu;
  const names = fitting.map((v) => v.name);
  if (op === "matmul") {
    if (M <= 2) return "blocked1x4";
    return names.includes("vec4x8") ? "vec4x8" : "blocked4x8";
  }
  if (op === "conv2d") return "gemm4x8";
  return names[0];
}
