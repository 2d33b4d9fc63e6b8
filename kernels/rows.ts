// Row kernels over the last dim of a contiguous [rows, n] tensor, in two tilings (tuned per shape):
//   thread: one thread per row, sequential passes (many short rows: what a CPU adapter wants),
//   group:  one workgroup of 64 per row, strided passes and tree reductions in workgroup memory
//           (few long rows, e.g. a decoder step's logits over the vocabulary, on a real GPU).
//
// softmax / log_softmax   params: [rows, n, offset]           out[r, :] = softmax(x[r, :]) (or its log)
// normalize               params: [rows, n, eps bits, offset] xhat[r, :] = (x - mean) / sqrt(var + eps),
//                                                      out = xhat * w + b, stats[r] = (mean, rstd)
// normalize_grad          params: [rows, n]               dx from dy, xhat, rstd and w (below)

import { MAIN, memoWGSL, PARAMS, WG_REDUCE } from "./common.ts";

/** The pieces a row kernel's body is written with, for one tiling. */
function tiling(group: boolean) {
  return group
    ? {
      head: `${WG_REDUCE}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = wid.x + wid.y * nwg.x; // the row
  let lid = lid3.x;`,
      each: "for (var j = lid; j < n; j = j + 64u)",
      sum: (v: string) => `${v} = wg_reduce(${v}, lid, false);`,
      max: (v: string) => `${v} = wg_reduce(${v}, lid, true);`,
      once: "if (lid == 0u)",
    }
    : {
      head: MAIN,
      each: "for (var j = 0u; j < n; j = j + 1u)",
      sum: (_: string) => "",
      max: (_: string) => "",
      once: "",
    };
}

/** Threads to launch: one per row, or a workgroup of 64 per row. */
export const rowThreads = (rows: number, group: boolean) => (group ? rows * 64 : rows);

export const softmaxWGSL = memoWGSL((log: boolean, group: boolean = false) => {
  const t = tiling(group);
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${t.head}
  if (i >= param(0)) { return; } // uniform per workgroup: barriers stay in uniform control flow
  let n = param(1);
  let row = param(2) + i * n;
  let orow = i * n;
  var m = bitcast<f32>(0xff800000u);
  ${t.each} { m = max(m, x[row + j]); }
  ${t.max("m")}
  var s = 0.0;
  ${t.each} { s = s + exp(x[row + j] - m); }
  ${t.sum("s")}
  ${
    log
      ? `let lse = m + log(s);
  ${t.each} { out[orow + j] = x[row + j] - lse; }`
      : `${t.each} { out[orow + j] = exp(x[row + j] - m) / s; }`
  }
}`;
});

export const normalizeWGSL = memoWGSL((group: boolean = false) => {
  const t = tiling(group);
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> xhat: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
${t.head}
  if (i >= param(0)) { return; }
  let n = param(1);
  let row = param(3) + i * n;
  var mean = 0.0;
  ${t.each} { mean = mean + x[row + j]; }
  ${t.sum("mean")}
  mean = mean / f32(n);
  var v = 0.0;
  ${t.each} { let d = x[row + j] - mean; v = v + d * d; }
  ${t.sum("v")}
  let rstd = inverseSqrt(v / f32(n) + bitcast<f32>(param(2)));
  ${t.each} {
    let h = (x[row + j] - mean) * rstd;
    xhat[i * n + j] = h;
    out[i * n + j] = h * w[j] + b[j];
  }
  ${t.once} {
    stats[2u * i] = mean;
    stats[2u * i + 1u] = rstd;
  }
}`;
});

/** dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat)), gw = g * w, per row.  params: [rows, n] */
export const normalizeGradWGSL = memoWGSL((group: boolean = false) => {
  const t = tiling(group);
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> xhat: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
${t.head}
  if (i >= param(0)) { return; }
  let n = param(1);
  let row = i * n;
  var m1 = 0.0; var m2 = 0.0;
  ${t.each} { let gw = g[row + j] * w[j]; m1 += gw; m2 += gw * xhat[row + j]; }
  ${t.sum("m1")}
  ${t.sum("m2")}
  m1 = m1 / f32(n); m2 = m2 / f32(n);
  let rstd = stats[2u * i + 1u];
  ${t.each} { dx[row + j] = rstd * (g[row + j] * w[j] - m1 - xhat[row + j] * m2); }
}`;
});

/**
 * The affine parameters' gradients, both in one pass: out[j] = sum_r g[r, j] xhat[r, j] (the
 * weight's), out[n + j] = sum_r g[r, j] (the bias's). One thread per column walks the rows, so
 * neighbouring threads read neighbouring floats; the rows are few (a batch of tokens) next to the
 * launches a mul and two two-stage sums would cost.   params: [rows, n]
 */
export const affineGradWGSL = /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> xhat: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${MAIN}
  let rows = param(0); let n = param(1);
  if (i >= n) { return; }
  var dw = 0.0; var db = 0.0;
  for (var r = 0u; r < rows; r++) { let gr = g[r * n + i]; dw = fma(gr, xhat[r * n + i], dw); db += gr; }
  out[i] = dw;
  out[n + i] = db;
}`;
