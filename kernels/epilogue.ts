// The convolution epilogue: what an inference conv does to each output before storing it, so that
// conv -> batchnorm (running statistics) -> (+ residual) -> (relu) writes its output once:
//
//   y[n, c, h, w] = act(conv[n, c, h, w] * scale[c] + shift[c] + res[n, c, h, w])
//
// Every part is optional and compiled in only when present (a conv bias is shift alone; batchnorm
// is scale = gamma / sqrt(var + eps), shift = beta - mean * scale). The conv2d forward kernels
// (kernels/conv2d.ts, kernels/conv2d_rows.ts) apply it at their store; 1x1 stride-1 convs, which
// run as a matmul, apply it in `convEpilogueWGSL` below, one pass over the matmul's output.
//
// Bindings: the epilogue's buffers follow the kernel's inputs in the order scale [C], shift [C],
// res (NCHW, as y), each only when present; the output binds after them.

import { MAIN, memoWGSL, PARAMS } from "./common.ts";

export interface Epilogue {
  scale: boolean;
  shift: boolean;
  residual: boolean;
  relu: boolean;
}

/** Buffers the epilogue binds (at most 3, so 2 inputs + 3 + the output stay within 8 storage buffers). */
export const epilogueBuffers = (e: Epilogue | undefined): number =>
  e ? [e.scale, e.shift, e.residual].filter(Boolean).length : 0;

/** Declarations of the epilogue's buffers from binding `first` on; the output binds at first + epilogueBuffers(e). */
export function epilogueDecls(e: Epilogue | undefined, first: number): string {
  const names = e
    ? (["scale", "shift", "res"] as const).filter((_, k) => [e.scale, e.shift, e.residual][k])
    : [];
  return names.map((n, k) => `@group(0) @binding(${first + k}) var<storage, read> ${n}: array<f32>;`)
    .join("\n");
}

/**
 * The epilogue applied to `v`, a WGSL f32 or vec4<f32>; `s`, `h`, `r` are the scale, shift and
 * residual as expressions of the same type, `zero` that type's zero. No epilogue: `v` itself.
 */
export function epilogueExpr(
  e: Epilogue | undefined,
  v: string,
  { s, h, r }: { s: string; h: string; r: string },
  zero = "0.0",
): string {
  if (!e) return v;
  let t = e.scale && e.shift
    ? `fma(${v}, ${s}, ${h})`
    : e.scale
    ? `${v} * ${s}`
    : e.shift
    ? `${v} + ${h}`
    : v;
  if (e.residual) t = `${t} + ${r}`;
  return e.relu ? `max(${t}, ${zero})` : t;
}

/**
 * The epilogue as its own pass, for 1x1 convs computed by matmul: x is the matmul's NCHW output,
 * one thread per element. params: [total, C, HW]
 */
export const convEpilogueWGSL = memoWGSL((e: Epilogue) => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
${epilogueDecls(e, 2)}
@group(0) @binding(${2 + epilogueBuffers(e)}) var<storage, read_write> y: array<f32>;
${MAIN}
  if (i >= param(0)) { return; }
  let c = (i / param(2)) % param(1);
  y[i] = ${epilogueExpr(e, "x[i]", { s: "scale[c]", h: "shift[c]", r: "res[i]" })};
}`);
