// Elementwise kernels over strided views, one thread per output element.
//
// params: [n, shape(9), out view(9), operand views(9 each)...]
// Operands are read through their views, so broadcasting (stride 0), permutes and slices cost no
// copies; the output is written through a view too, which makes `copy` a strided scatter (used by
// contiguous, concat, pad and in-place assignment).

import { MAIN, PARAMS, VIEW_OFFSET } from "./common.ts";

export const MATH = /* wgsl */ `
// Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below f32 resolution near 1.
fn erf_(x: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(x));
  let p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  return sign(x) * (1.0 - p * exp(-x * x));
}
// WGSL's tanh may overflow to NaN for large |x| on some drivers; it is +-1 in f32 beyond 10.
fn tanh_(x: f32) -> f32 { return tanh(clamp(x, -10.0, 10.0)); }
// WGSL pow is exp2(y * log2(x)): undefined for x < 0. Integer exponents of negatives are defined.
fn pow_(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  if (fract(y) != 0.0) { return bitcast<f32>(0x7fc00000u); }
  let m = pow(-x, y);
  return select(m, -m, fract(y * 0.5) != 0.0);
}
const GELU_K: f32 = 0.7978845608028654; // sqrt(2 / pi)
const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;`;

/**
 * How an operand (or the output) is addressed. "flat": contiguous in the output's shape, element
 * offset + i; "scalar": one element for all i; "strided": through its view. Most calls in training
 * are flat, and index arithmetic (divisions per dim, which CPU adapters cannot vectorise) costs
 * far more than the arithmetic of the op itself, so each combination gets its own kernel.
 */
export type Access = "flat" | "scalar" | "strided";

function address(kind: Access, viewAt: number): string {
  if (kind === "flat") return `params[${viewAt}u] + i`;
  if (kind === "scalar") return `params[${viewAt}u]`;
  return `view_offset(i, 1u, ${viewAt}u)`;
}

function kernel(operands: string[], expr: string, access: Access[], outType = "f32"): string {
  const bindings = operands.map((name, k) =>
    `@group(0) @binding(${k + 1}) var<storage, read> ${name}_: array<f32>;`
  ).join("\n");
  const loads = operands.map((name, k) => `  let ${name} = ${name}_[${address(access[k + 1], 19 + 9 * k)}];`)
    .join("\n");
  return /* wgsl */ `
${PARAMS}
${bindings}
@group(0) @binding(${operands.length + 1}) var<storage, read_write> out: array<${outType}>;
${access.includes("strided") ? VIEW_OFFSET : ""}
${MATH}
${MAIN}
  if (i >= params[0]) { return; }
${loads}
  out[${address(access[0], 10)}] = ${expr};
}`;
}

// `access` lists the output first, then the operands.
/** `expr` is a WGSL expression in `x`. */
export const unaryWGSL = (expr: string, access: Access[]) => kernel(["x"], expr, access);
/** `expr` is a WGSL expression in `a` and `b`. */
export const binaryWGSL = (expr: string, access: Access[]) => kernel(["a", "b"], expr, access);
export const whereWGSL = (access: Access[]) => kernel(["c", "a", "b"], "select(b, a, c != 0.0)", access);

/** Strided copy of i32 data (index tensors move through views too). */
export const copyI32WGSL = (access: Access[]) =>
  kernel(["x"], "x", access, "i32").replace(
    "var<storage, read> x_: array<f32>",
    "var<storage, read> x_: array<i32>",
  );
