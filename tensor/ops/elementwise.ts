// Elementwise ops: one table row per op with its CPU formula, its WGSL expression and its
// gradient. Operands broadcast NumPy-style and are read through their strides in place.

import {
  type Access,
  accumulateWGSL,
  binaryWGSL,
  copyI32WGSL,
  elementwiseThreads,
  unaryWGSL,
  whereWGSL,
} from "../../kernels/elementwise.ts";
import { shapeWords, viewWords } from "../../kernels/common.ts";
import { empty, scalarLike } from "../create.ts";
import { broadcastShapes, contiguousStrides, type Shape } from "../shape.ts";
import { gpu } from "../storage.ts";
import { coalesce, forEachOffset } from "../strided.ts";
import { fromOp, Tensor } from "../tensor.ts";
import { register } from "./registry.ts";
import { sumTo } from "./reduce.ts";

export type Operand = Tensor | number;

/** Strides that read `t` as if expanded to `shape` (0 on broadcast dims). */
export function broadcastStrides(t: { shape: Shape; strides: Shape }, shape: Shape): number[] {
  const lead = shape.length - t.shape.length;
  return shape.map((d, i) => (i < lead || t.shape[i - lead] !== d ? 0 : t.strides[i - lead]));
}

/**
 * Runs one elementwise kernel: out[i] = f(inputs broadcast to `shape`). With `into`, writes through
 * that view instead of allocating (in-place copies and scatters).
 */
export function elementwise(
  name: string,
  code: (access: Access[]) => string,
  f: (...xs: number[]) => number,
  inputs: Tensor[],
  shape: Shape = broadcastShapes(...inputs.map((x) => x.shape)),
  into?: Tensor,
): Tensor {
  for (const x of inputs) x.assertLive();
  const out = into ?? empty(shape, { device: inputs[0].device, dtype: inputs[0].dtype });
  const views = inputs.map((x) => ({ strides: broadcastStrides(x, shape), offset: x.offset }));
  if (out.device === "cpu") {
    const o = out.storage.host!, hs = inputs.map((x) => x.storage.host!);
    const args = new Array<number>(inputs.length);
    forEachOffset(shape, [out, ...views], (_, offs) => {
      for (let k = 0; k < args.length; k++) args[k] = hs[k][offs[k + 1]];
      o[offs[0]] = f(...args);
    });
  } else {
    const n = out.shape.reduce((a, b) => a * b, 1);
    const c = coalesce(shape, [out, ...views]), dims = c.shape, dense = contiguousStrides(dims);
    const kind = (v: { strides: Shape }, size: number): Access =>
      size === 1 || v.strides.every((s) => s === 0)
        ? "scalar"
        : v.strides.every((s, d) => s === dense[d])
        ? "flat"
        : "strided";
    // An operand contiguous over trailing dims and broadcast over the rest repeats every P elements.
    const row = (v: { strides: Shape }): Access => {
      let d = dims.length - 1, P = 1;
      for (; d >= 0 && v.strides[d] === P; d--) P *= dims[d];
      return v.strides.slice(0, d + 1).every((s) => s === 0) ? `row:${P}` : "strided";
    };
    const operand = (v: { strides: Shape }) => {
      const k = kind(v, n);
      return k === "strided" ? row(v) : k;
    };
    const access = [kind(c.views[0], n), ...c.views.slice(1).map(operand)];
    gpu().run({
      name,
      code: code(access),
      params: [n, ...shapeWords(dims), ...c.views.flatMap(viewWords)],
      reads: inputs.map((x) => x.storage.binding),
      writes: [out.storage.binding],
      threads: elementwiseThreads(n, access),
    });
  }
  return out;
}

const identity = (x: number) => x;

/** Writes `src` (broadcast to dst's shape) through the view `dst`; no autograd. */
export function copyInto(dst: Tensor, src: Tensor): Tensor {
  if (dst.dtype !== src.dtype) throw new Error(`copy from ${src.dtype} into ${dst.dtype}`);
  const code = dst.dtype === "i32" ? copyI32WGSL : (a: Access[]) => unaryWGSL("x", a);
  return elementwise("copy", code, identity, [src], dst.shape, dst);
}

/** dst += src (broadcast to dst's shape) through the view `dst`, in place; no autograd. */
export function addInto(dst: Tensor, src: Tensor): Tensor {
  // The CPU twin reads dst as an operand; a kernel may not bind dst's buffer twice, so it reads `out`.
  return dst.device === "cpu"
    ? elementwise("add", accumulateWGSL, (a, b) => a + b, [dst, src], dst.shape, dst)
    : elementwise("accumulate", accumulateWGSL, identity, [src], dst.shape, dst);
}

// ---- CPU reference math (f64) ---------------------------------------------------------------

/** erf to ~1e-15: Taylor series near 0, Lentz continued fraction for erfc in the tails. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x, sum = x;
    for (let n = 1; n < 80 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= -x * x / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  let f = ax, c = ax, d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = 1 / (ax + an * d);
    c = ax + an / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const GELU_K = Math.sqrt(2 / Math.PI);
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(GELU_K * (x + 0.044715 * x ** 3)));
const geluTanhGrad = (x: number) => {
  const t = Math.tanh(GELU_K * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * x * x);
};
const geluErf = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluErfGrad = (x: number) =>
  0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

// ---- unary ----------------------------------------------------------------------------------

type Grad1 = (x: Tensor, y: Tensor, g: Tensor) => Tensor;
interface UnaryDef {
  cpu: (x: number) => number;
  wgsl: string;
  grad?: Grad1;
}

export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "abs"
  | "relu"
  | "tanh"
  | "sigmoid"
  | "gelu"
  | "geluErf"
  | "sign"
  | "step"
  | "geluGrad"
  | "geluErfGrad";

const UNARY: Record<UnaryOp, UnaryDef> = {
  neg: { cpu: (x) => -x, wgsl: "-x", grad: (_x, _y, g) => neg(g) },
  exp: { cpu: Math.exp, wgsl: "exp(x)", grad: (_x, y, g) => mul(g, y) },
  log: { cpu: Math.log, wgsl: "log(x)", grad: (x, _y, g) => div(g, x) },
  sqrt: { cpu: Math.sqrt, wgsl: "sqrt(x)", grad: (_x, y, g) => div(g, mul(y, 2)) },
  rsqrt: {
    cpu: (x) => 1 / Math.sqrt(x),
    wgsl: "inverseSqrt(x)",
    grad: (_x, y, g) => mul(g, mul(pow(y, 3), -0.5)),
  },
  abs: { cpu: Math.abs, wgsl: "abs(x)", grad: (x, _y, g) => chain("sign", x, g) },
  relu: { cpu: (x) => Math.max(x, 0), wgsl: "max(x, 0.0)", grad: (x, _y, g) => chain("step", x, g) },
  tanh: { cpu: Math.tanh, wgsl: "tanh_(x)", grad: (_x, y, g) => mul(g, sub(1, mul(y, y))) },
  sigmoid: {
    cpu: (x) => 1 / (1 + Math.exp(-x)),
    wgsl: "1.0 / (1.0 + exp(-x))",
    grad: (_x, y, g) => mul(g, mul(y, sub(1, y))),
  },
  gelu: {
    cpu: geluTanh,
    wgsl: "0.5 * x * (1.0 + tanh_(GELU_K * (x + 0.044715 * x * x * x)))",
    grad: (x, _y, g) => chain("geluGrad", x, g),
  },
  geluErf: {
    cpu: geluErf,
    wgsl: "0.5 * x * (1.0 + erf_(x * INV_SQRT2))",
    grad: (x, _y, g) => chain("geluErfGrad", x, g),
  },
  // Derivative helpers used by the gradients above; not differentiable themselves.
  sign: { cpu: Math.sign, wgsl: "sign(x)" },
  step: { cpu: (x) => (x > 0 ? 1 : 0), wgsl: "select(0.0, 1.0, x > 0.0)" },
  geluGrad: {
    cpu: geluTanhGrad,
    wgsl: "0.5 * (1.0 + tanh_(GELU_K * (x + 0.044715 * x * x * x))) + 0.5 * x * " +
      "(1.0 - pow(tanh_(GELU_K * (x + 0.044715 * x * x * x)), 2.0)) * GELU_K * (1.0 + 0.134145 * x * x)",
  },
  geluErfGrad: {
    cpu: geluErfGrad,
    wgsl: "0.5 * (1.0 + erf_(x * INV_SQRT2)) + x * exp(-0.5 * x * x) * INV_SQRT_2PI",
  },
};

export function unary(op: UnaryOp, x: Tensor): Tensor {
  const def: UnaryDef = UNARY[op];
  const y = elementwise(op, (a) => unaryWGSL(def.wgsl, a), def.cpu, [x]);
  return def.grad ? fromOp(op, y, [x], (g) => [def.grad!(x, y, g)]) : y;
}

/**
 * g * f'(x) in one kernel, where f' is one of the derivative helpers above: a backward pass that
 * would otherwise launch f' and then a multiply (two passes over the activations per relu).
 */
function chain(derivative: "sign" | "step" | "geluGrad" | "geluErfGrad", x: Tensor, g: Tensor): Tensor {
  const d = UNARY[derivative];
  const wgsl = `a * (${d.wgsl.replace(/\bx\b/g, "b")})`;
  return elementwise(`${derivative}_chain`, (a) => binaryWGSL(wgsl, a), (gv, xv) => gv * d.cpu(xv), [g, x]);
}

register("neg", "exp", "log", "sqrt", "rsqrt", "abs", "relu", "tanh", "sigmoid", "gelu", "geluErf");
export const neg = (x: Tensor): Tensor => unary("neg", x);
export const exp = (x: Tensor): Tensor => unary("exp", x);
export const log = (x: Tensor): Tensor => unary("log", x);
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
export const abs = (x: Tensor): Tensor => unary("abs", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
/** GELU; `approximate: "tanh"` (default, as in GPT-2/BERT) or `"none"` for the exact erf form. */
export const gelu = (x: Tensor, approximate: "tanh" | "none" = "tanh"): Tensor =>
  unary(approximate === "tanh" ? "gelu" : "geluErf", x);

// ---- binary ---------------------------------------------------------------------------------

type Grad2 = (a: Tensor, b: Tensor, y: Tensor, g: Tensor) => [Tensor | null, Tensor | null];
interface BinaryDef {
  cpu: (a: number, b: number) => number;
  wgsl: string;
  grad?: Grad2;
}

/** Ties in maximum/minimum split the gradient equally, as the reductions do. */
function tieShare(a: Tensor, b: Tensor, g: Tensor, winA: Tensor): [Tensor, Tensor] {
  const half = mul(binary("eq", a, b), 0.5);
  return [mul(g, add(winA, half)), mul(g, sub(sub(1, winA), half))];
}

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "gt"
  | "ge"
  | "lt";

const BINARY: Record<BinaryOp, BinaryDef> = {
  add: { cpu: (a, b) => a + b, wgsl: "a + b", grad: (_a, _b, _y, g) => [g, g] },
  sub: { cpu: (a, b) => a - b, wgsl: "a - b", grad: (_a, _b, _y, g) => [g, neg(g)] },
  mul: { cpu: (a, b) => a * b, wgsl: "a * b", grad: (a, b, _y, g) => [mul(g, b), mul(g, a)] },
  div: { cpu: (a, b) => a / b, wgsl: "a / b", grad: (_a, b, y, g) => [div(g, b), neg(div(mul(g, y), b))] },
  pow: {
    cpu: Math.pow,
    wgsl: "pow_(a, b)",
    grad: (a, b, y, g) => [mul(g, mul(b, pow(a, sub(b, 1)))), b.requiresGrad ? mul(g, mul(y, log(a))) : null],
  },
  maximum: {
    cpu: Math.max,
    wgsl: "max(a, b)",
    grad: (a, b, _y, g) => tieShare(a, b, g, binary("gt", a, b)),
  },
  minimum: {
    cpu: Math.min,
    wgsl: "min(a, b)",
    grad: (a, b, _y, g) => tieShare(a, b, g, binary("gt", b, a)),
  },
  // Comparisons give 1 or 0; not differentiable.
  eq: { cpu: (a, b) => (a === b ? 1 : 0), wgsl: "select(0.0, 1.0, a == b)" },
  ne: { cpu: (a, b) => (a !== b ? 1 : 0), wgsl: "select(0.0, 1.0, a != b)" },
  gt: { cpu: (a, b) => (a > b ? 1 : 0), wgsl: "select(0.0, 1.0, a > b)" },
  ge: { cpu: (a, b) => (a >= b ? 1 : 0), wgsl: "select(0.0, 1.0, a >= b)" },
  lt: { cpu: (a, b) => (a < b ? 1 : 0), wgsl: "select(0.0, 1.0, a < b)" },
};

function operands(a: Operand, b: Operand): [Tensor, Tensor] {
  if (a instanceof Tensor && b instanceof Tensor) {
    if (a.device !== b.device) throw new Error(`operands on ${a.device} and ${b.device}`);
    if (a.dtype !== b.dtype) throw new Error(`operands of dtype ${a.dtype} and ${b.dtype}`);
    return [a, b];
  }
  if (a instanceof Tensor) return [a, scalarLike(a, b as number)];
  if (b instanceof Tensor) return [scalarLike(b, a), b];
  throw new Error("at least one operand must be a tensor");
}

export function binary(op: BinaryOp, a: Operand, b: Operand): Tensor {
  const def: BinaryDef = BINARY[op];
  const [x, y] = operands(a, b);
  const out = elementwise(op, (a) => binaryWGSL(def.wgsl, a), def.cpu, [x, y]);
  if (!def.grad) return out;
  return fromOp(op, out, [x, y], (g) => {
    const [gx, gy] = def.grad!(x, y, out, g);
    return [gx && sumTo(gx, x.shape), gy && sumTo(gy, y.shape)];
  });
}

register("add", "sub", "mul", "div", "pow", "maximum", "minimum");
export const add = (a: Operand, b: Operand): Tensor => binary("add", a, b);
export const sub = (a: Operand, b: Operand): Tensor => binary("sub", a, b);
export const mul = (a: Operand, b: Operand): Tensor => binary("mul", a, b);
export const div = (a: Operand, b: Operand): Tensor => binary("div", a, b);
export const pow = (a: Operand, b: Operand): Tensor => binary("pow", a, b);
export const maximum = (a: Operand, b: Operand): Tensor => binary("maximum", a, b);
export const minimum = (a: Operand, b: Operand): Tensor => binary("minimum", a, b);

// ---- where ----------------------------------------------------------------------------------

register("where");
/** cond ? a : b, elementwise with broadcasting; `cond` is a 0/1 (nonzero = true) tensor. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const [x, y] = a instanceof Tensor || b instanceof Tensor
    ? operands(a, b)
    : operands(scalarLike(cond, a), b);
  const out = elementwise("where", whereWGSL, (c, p, q) => (c !== 0 ? p : q), [cond, x, y]);
  return fromOp("where", out, [cond, x, y], (g) => {
    const zero = scalarLike(g, 0);
    return [null, sumTo(where(cond, g, zero), x.shape), sumTo(where(cond, zero, g), y.shape)];
  });
}
