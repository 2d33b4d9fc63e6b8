// Elementwise kernels over strided views: one thread per output element when any access is
// strided, PER_THREAD elements per thread otherwise.
//
// params: [n, shape(9), out view(9), operand views(9 each)...]
// Operands are read through their views, so broadcasting (stride 0), permutes and slices cost no
// copies; the output is written through a view too, which makes `copy` a strided scatter (used by
// contiguous, concat, pad and in-place assignment).

import { MAIN, memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";

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
export type Access = "flat" | "scalar" | "strided" | `row:${number}`;

/** "row:P" (operands only): repeats every P output elements, as a bias broadcast over the leading dims
 * does; P is compiled in, so the remainder is a multiply, not a division per element. */
function address(kind: Access, viewAt: number, base: string): string {
  if (kind === "flat") return `${base} + i`;
  if (kind === "scalar") return base;
  if (kind.startsWith("row:")) return `${base} + i % ${kind.slice(4)}u`;
  return `view_offset(i, 1u, ${viewAt}u)`;
}

/**
 * Elements per thread of a kernel with no strided access: thread t of T takes t, t + T, t + 2T...,
 * so neighbouring threads still touch neighbouring elements (coalesced on GPUs, one vector load
 * across SIMD lanes on CPU adapters) while a CPU adapter pays its per-invocation cost a quarter as
 * often.
 */
export const PER_THREAD = 4;

/** Threads to launch for n elements under these accesses. */
export function elementwiseThreads(n: number, access: Access[]): number {
  return access.includes("strided") ? n : Math.ceil(n / PER_THREAD);
}

/** `expr` may be a function of the output's address, for kernels that read what they overwrite. */
function kernel(
  operands: string[],
  expr: string | ((outAt: string) => string),
  access: Access[],
  outType = "f32",
): string {
  const bindings = operands.map((name, k) =>
    `@group(0) @binding(${k + 1}) var<storage, read> ${name}_: array<f32>;`
  ).join("\n");
  // the output's view at params[10], operand k's at params[19 + 9k]
  const views = [10, ...operands.map((_, k) => 19 + 9 * k)], names = ["out", ...operands];
  // Offsets go into lets before the loop, read once per thread (bench/RESULTS.md step 44: when
  // params were storage, which `out` might alias, each store made the loop read them again).
  const hoist = (name: string, k: number) =>
    access[k] === "strided" ? "" : `  let ${name}_at = param(${views[k]}u);\n`;
  const bases = names.map(hoist).join("");
  const at = (k: number) => address(access[k], views[k], `${names[k]}_at`);
  const loads = operands.map((name, k) => `  let ${name} = ${name}_[${at(k + 1)}];`).join("\n");
  const body = typeof expr === "string"
    ? `${loads}
  out[${at(0)}] = ${expr};`
    : `${loads}
  let o = ${at(0)};
  out[o] = ${expr("o")};`;
  const strided = access.includes("strided");
  return /* wgsl */ `
${PARAMS}
${bindings}
@group(0) @binding(${operands.length + 1}) var<storage, read_write> out: array<${outType}>;
${strided ? VIEW_OFFSET : ""}
${MATH}
${
    strided
      ? `${MAIN}
  if (i >= param(0)) { return; }
${bases}${body}
}`
      : `${MAIN.replace("let i =", "let t =")}
  let n = param(0);
  let T = (n + ${PER_THREAD - 1}u) / ${PER_THREAD}u;
  if (t >= T) { return; }
${bases}  for (var e = 0u; e < ${PER_THREAD}u; e = e + 1u) {
    let i = t + e * T;
    if (i >= n) { return; }
  ${body.replaceAll("\n", "\n  ")}
  }
}`
  }`;
}

// `access` lists the output first, then the operands.
/** `expr` is a WGSL expression in `x`. */
export const unaryWGSL = memoWGSL((expr: string, access: Access[]) => kernel(["x"], expr, access));
/** `expr` is a WGSL expression in `a` and `b`. */
export const binaryWGSL = memoWGSL((expr: string, access: Access[]) => kernel(["a", "b"], expr, access));
export const whereWGSL = memoWGSL((access: Access[]) =>
  kernel(["c", "a", "b"], "select(b, a, c != 0.0)", access)
);

/** out += x in place (the output binding is read_write: a buffer may not be bound twice). */
export const accumulateWGSL = memoWGSL((access: Access[]) => kernel(["x"], (o) => `out[${o}] + x`, access));

/** Strided copy of i32 data (index tensors move through views too). */
export const copyI32WGSL = memoWGSL((access: Access[]) =>
  kernel(["x"], "x", access, "i32").replace(
    "var<storage, read> x_: array<f32>",
    "var<storage, read> x_: array<i32>",
  )
);
