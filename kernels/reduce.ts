// reduce: out[i] = op over the reduced dims of x, one thread per output element.
//
// params: [nOut, out shape(9), x kept-dims view(9), reduced shape(9), x reduced-dims view(9), nRed,
//          parts, chunk, out offset]
// The input is read through two views: the kept dims locate the thread's slice, the reduced dims
// walk it, so any axes of any strided input reduce without a transpose.
// When the reduced dims collapse into one strided run (`linear`: the caller checks), thread p reads
// x[base + j * stride] directly instead of mapping j through the view: per element that is one
// multiply-add instead of a division and a remainder per dim (6x on llvmpipe).
// Parallelism: `parts` threads share each output, thread p covering reduced elements
// [p * chunk, (p + 1) * chunk) and writing out[o * parts + p]; the caller reduces those partials
// again. A bias gradient (few outputs, thousands of rows each) would otherwise run on a handful of
// threads.

import { MAIN, memoWGSL, PARAMS, VIEW_OFFSET } from "./common.ts";

const OPS = {
  sum: { init: "0.0", step: "acc + v" },
  max: { init: "bitcast<f32>(0xff800000u)", step: "max(acc, v)" },
  min: { init: "bitcast<f32>(0x7f800000u)", step: "min(acc, v)" },
  sumsq: { init: "0.0", step: "acc + v * v" },
};
export type ReduceOp = keyof typeof OPS;

export const reduceWGSL = memoWGSL((op: ReduceOp, linear: boolean = false) => /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${VIEW_OFFSET}
${MAIN}
  let parts = param(38);
  let o = i / parts; let p = i % parts;
  if (o >= param(0)) { return; }
  let base = view_offset(o, 1u, 10u);
  var acc: f32 = ${OPS[op].init};
  let end = min(param(37), (p + 1u) * param(39));
  for (var j = p * param(39); j < end; j = j + 1u) {
    let v = x[base + ${linear ? "j * param(29)" : "view_offset(j, 19u, 28u)"}];
    acc = ${OPS[op].step};
  }
  out[param(40) + i] = acc;
}`);
