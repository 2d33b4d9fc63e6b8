// Fused attention, register-blocked over rows, with vec4 loads: the same three products as
// kernels/attention.ts (same parameters, masks, statistics and outputs), for CPU adapters.
//
// There, a thread owns one query (or key) row and loads every key (or query) row it meets one
// float at a time: one load per multiply-add. Here a thread owns R rows and loads the rows it
// meets as D/4 vec4s, once for all R: per key, the forward does 2 * D / 4 vec4 loads for
// 2 * R * D multiply-adds. On llvmpipe a load costs ~50 vector fmas (kernels/matmul.ts), so the
// R rows' registers (q, o, and their running softmax statistics) are what buys the speed.
//
//   forward  thread = (bh, R query rows):  online softmax over the keys, o = P V, lse per row
//   dQ       thread = (bh, R query rows):  dQ_i = scale * sum_j P_ij (dO_i . V_j - D_i) K_j
//   dK, dV   thread = (bh, R key rows):    dV_j = sum_i P_ij dO_i,  dK_j = scale * sum_i dS_ij Q_i
//
// Requires D % 4 == 0 and every operand's offset and strides multiples of 4 (checked by the caller).
// Rows past the end are clamped on load and skipped on store; under the causal mask a query block
// stops at its last row's last visible key, and a key block starts at its first row's first query.
// params: as kernels/attention.ts.

import { LAYOUT, ROW_LAYOUT } from "./attention.ts";
import { MAIN, PARAMS } from "./common.ts";

const range = (n: number) => [...Array(n).keys()];

const COMMON = /* wgsl */ `
${PARAMS}
${ROW_LAYOUT}
/** rowAt in vec4s */
fn row4(L: u32, bh: u32, t: u32) -> u32 { return rowAt(L, bh, t) / 4u; }
fn keyShown(bh: u32, j: u32) -> bool {
  return param(6) == 0u || pad[(bh / param(3)) * param(2) + j] == 0.0;
}
fn causalShown(i: u32, j: u32) -> bool { return param(5) == 0u || j + param(1) <= i + param(2); }`;

/** sum over c of dot(x{r}_c, y_c): one row's dot product with a loaded row, as vec4 dots. */
const dotRow = (x: string, y: string, D: number) =>
  range(D / 4).map((c) => `dot(${x}_${c}, ${y}${c})`).join(" + ");

/** `let name{r}_{c} = array[(row r's vec4 offset) + c] * scale` for every r and c. */
const loadRows = (
  name: string,
  array: string,
  rowOf: (r: number) => string,
  R: number,
  D: number,
  mul = "",
) =>
  range(R).flatMap((r) =>
    range(D / 4).map((c) => `  let ${name}${r}_${c} = ${array}[${rowOf(r)} + ${c}u]${mul};`)
  );

const QUERY_BLOCK = (R: number) => /* wgsl */ `
  let Tq = param(1); let Tk = param(2);
  let blocks = (Tq + ${R - 1}u) / ${R}u;
  if (i >= param(0) * blocks) { return; }
  let bh = i / blocks; let row0 = (i % blocks) * ${R}u;
  let scale = bitcast<f32>(param(4));
${
  range(R).map((r) =>
    `  let t${r} = min(row0 + ${r}u, Tq - 1u); let sr${r} = bh * Tq + t${r}; let qr${r} = row4(QL, bh, t${r});`
  ).join("\n")
}
  // under the causal mask no row of the block sees a key past its last row's
  let jEnd = select(Tk, u32(clamp(i32(min(row0 + ${R}u, Tq) + Tk) - i32(Tq), 0, i32(Tk))), param(5) != 0u);`;

export const attentionBlockWGSL = (D: number, R: number) => /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> pad: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
${COMMON}
${MAIN}
${QUERY_BLOCK(R)}
${loadRows("q", "q", (r) => `qr${r}`, R, D, " * scale").join("\n")}
${range(R).flatMap((r) => range(D / 4).map((c) => `  var o${r}_${c} = vec4<f32>(0.0);`)).join("\n")}
${range(R).map((r) => `  var m${r} = bitcast<f32>(0xff800000u); var l${r} = 0.0;`).join("\n")}
  let k0 = rowAt(KL, bh, 0u); let ks = param(KL + 3u); let v0 = rowAt(VL, bh, 0u); let vs = param(VL + 3u);
  for (var j = 0u; j < jEnd; j++) {
    let kr = (k0 + j * ks) / 4u; let vr = (v0 + j * vs) / 4u; let shown = keyShown(bh, j);
${range(D / 4).map((c) => `    let k${c} = k[kr + ${c}u];`).join("\n")}
${
  range(R).map((r) =>
    `    let s${r} = ${dotRow(`q${r}`, "k", D)};
    let vis${r} = shown && causalShown(row0 + ${r}u, j);
    let m${r}New = select(m${r}, max(m${r}, s${r}), vis${r});
    let corr${r} = select(1.0, exp(m${r} - m${r}New), vis${r});
    let p${r} = select(0.0, exp(s${r} - m${r}New), vis${r});
    l${r} = l${r} * corr${r} + p${r}; m${r} = m${r}New;`
  ).join("\n")
}
${range(D / 4).map((c) => `    let v${c} = v[vr + ${c}u];`).join("\n")}
${
  range(R).flatMap((r) =>
    range(D / 4).map((c) => `    o${r}_${c} = fma(vec4<f32>(p${r}), v${c}, o${r}_${c} * corr${r});`)
  )
    .join("\n")
}
  }
${
  range(R).map((r) =>
    `  if (row0 + ${r}u < Tq) {
    let inv = select(0.0, 1.0 / l${r}, l${r} > 0.0); let orow = row4(OL, bh, t${r});
${range(D / 4).map((c) => `    o[orow + ${c}u] = o${r}_${c} * inv;`).join("\n")}
    stats[2u * sr${r}] = m${r} + log(l${r});
  }`
  ).join("\n")
}
}`;

const BACKWARD_IO = /* wgsl */ `
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> pad: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> dO: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>;`;

/** dQ for R query rows per thread. */
export const attentionBlockGradQWGSL = (D: number, R: number) => /* wgsl */ `
${BACKWARD_IO}
${COMMON}
${MAIN}
${QUERY_BLOCK(R)}
${loadRows("q", "q", (r) => `qr${r}`, R, D, " * scale").join("\n")}
${loadRows("g", "dO", (r) => `row4(GL, bh, t${r})`, R, D).join("\n")}
${range(R).map((r) => `  let lse${r} = stats[2u * sr${r}]; let di${r} = stats[2u * sr${r} + 1u];`).join("\n")}
${range(R).flatMap((r) => range(D / 4).map((c) => `  var dq${r}_${c} = vec4<f32>(0.0);`)).join("\n")}
  let k0 = rowAt(KL, bh, 0u); let ks = param(KL + 3u); let v0 = rowAt(VL, bh, 0u); let vs = param(VL + 3u);
  for (var j = 0u; j < jEnd; j++) {
    let kr = (k0 + j * ks) / 4u; let vr = (v0 + j * vs) / 4u; let shown = keyShown(bh, j);
${range(D / 4).map((c) => `    let k${c} = k[kr + ${c}u]; let v${c} = v[vr + ${c}u];`).join("\n")}
${
  range(R).map((r) =>
    `    let ds${r} = select(0.0, exp(${dotRow(`q${r}`, "k", D)} - lse${r}) * (${
      dotRow(`g${r}`, "v", D)
    } - di${r}),
                      shown && causalShown(row0 + ${r}u, j));`
  ).join("\n")
}
${
  range(R).flatMap((r) =>
    range(D / 4).map((c) => `    dq${r}_${c} = fma(vec4<f32>(ds${r}), k${c}, dq${r}_${c});`)
  ).join("\n")
}
  }
${
  range(R).map((r) =>
    `  if (row0 + ${r}u < Tq) {
    let at = row4(OL, bh, t${r});
${range(D / 4).map((c) => `    out[at + ${c}u] = dq${r}_${c} * scale;`).join("\n")}
  }`
  ).join("\n")
}
}`;

/** dK and dV for R key rows per thread, into one buffer (dV at dK's place + params[27]). */
export const attentionBlockGradKVWGSL = (D: number, R: number) => /* wgsl */ `
${BACKWARD_IO}
${COMMON}
${MAIN}
  let Tq = param(1); let Tk = param(2);
  let blocks = (Tk + ${R - 1}u) / ${R}u;
  if (i >= param(0) * blocks) { return; }
  let bh = i / blocks; let jb = (i % blocks) * ${R}u;
  let scale = bitcast<f32>(param(4));
${
  range(R).map((r) =>
    `  let t${r} = min(jb + ${r}u, Tk - 1u); let kr${r} = row4(KL, bh, t${r}); let vr${r} = row4(VL, bh, t${r});`
  ).join("\n")
}
${
  range(R).flatMap((r) =>
    range(D / 4).map((c) =>
      `  let k${r}_${c} = k[kr${r} + ${c}u] * scale; let v${r}_${c} = v[vr${r} + ${c}u];`
    )
  ).join("\n")
}
${
  range(R).map((r) => `  let shown${r} = jb + ${r}u < Tk && keyShown(bh, min(jb + ${r}u, Tk - 1u));`).join(
    "\n",
  )
}
${
  range(R).flatMap((r) =>
    range(D / 4).map((c) => `  var dk${r}_${c} = vec4<f32>(0.0); var dv${r}_${c} = vec4<f32>(0.0);`)
  )
    .join("\n")
}
  // under the causal mask no query before the block's first key's first viewer sees any of its keys
  let iStart = select(0u, u32(max(i32(jb + Tq) - i32(Tk), 0)), param(5) != 0u);
  let q0 = rowAt(QL, bh, 0u); let qs = param(QL + 3u); let g0 = rowAt(GL, bh, 0u); let gs = param(GL + 3u);
  for (var r = iStart; r < Tq; r++) {
    let si = bh * Tq + r; let qi = (q0 + r * qs) / 4u; let gi = (g0 + r * gs) / 4u;
    let lse = stats[2u * si]; let di = stats[2u * si + 1u];
${range(D / 4).map((c) => `    let q${c} = q[qi + ${c}u]; let g${c} = dO[gi + ${c}u];`).join("\n")}
${
  range(R).map((r) =>
    `    let p${r} = select(0.0, exp(${
      dotRow(`k${r}`, "q", D)
    } - lse), shown${r} && causalShown(r, jb + ${r}u));
    let ds${r} = p${r} * (${dotRow(`v${r}`, "g", D)} - di);`
  ).join("\n")
}
${
  range(R).flatMap((r) =>
    range(D / 4).map((c) =>
      `    dv${r}_${c} = fma(vec4<f32>(p${r}), g${c}, dv${r}_${c}); dk${r}_${c} = fma(vec4<f32>(ds${r}), q${c}, dk${r}_${c});`
    )
  ).join("\n")
}
  }
  let dV = param(${LAYOUT.dV}) / 4u;
${
  range(R).map((r) =>
    `  if (jb + ${r}u < Tk) {
    let at = row4(OL, bh, t${r});
${
      range(D / 4).map((c) =>
        `    out[at + ${c}u] = dk${r}_${c} * scale; out[dV + at + ${c}u] = dv${r}_${c};`
      )
        .join("\n")
    }
  }`
  ).join("\n")
}
}`;
