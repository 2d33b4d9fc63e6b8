// `deno task bench`: the real code paths on this machine's WebGPU adapter, beside TensorFlow.js's
// WebGPU backend on the same adapter in the same process, with the ratio. Prints a table and
// writes bench/results/latest.json (adapter included) so runs can be compared.
//
//   deno task bench            shapes sized for a CPU adapter (minutes on llvmpipe)
//   deno task bench --full     the full shapes (batch 8, 224 input, B*T = 4096)
//   deno task bench --ship     also writes the tuned kernel table to kernels/tuned/<adapter>.json
//   deno task bench --only matmul,conv2d   only the rows whose op starts with one of these
//                                          (--only convbn: the fused conv epilogue against unfused)
//   deno task bench --all      also the model (ResNet, decoder with / without KV cache), the data
//                              loader and the caption metrics benches

import { F, gpu, randn, type Tensor, tensor, tidy } from "../tensor/mod.ts";
import { tuner } from "../tensor/webgpu/tuner.ts";
import { keyIsCurrent } from "../tensor/webgpu/variants.ts";
import { medianMs, pairedSpeedup } from "./timing.ts";
import {
  initTfjs,
  tfjsAttention,
  tfjsAttentionBackward,
  tfjsConv2d,
  tfjsConv2dBackward,
  tfjsMatmul,
} from "./tfjs.ts";

const full = Deno.args.includes("--full"), reps = 3;
const onlyAt = Deno.args.indexOf("--only");
const only = onlyAt >= 0 ? (Deno.args[onlyAt + 1] ?? "").split(",") : null;

interface Row {
  op: string;
  shape: string;
  ms: number;
  gflops: number | null;
  tfjsMs: number | null;
  ratio: number | null;
}
const rows: Row[] = [];

const settled = async () => {
  await tuner.settled();
  await gpu().done();
};
/** Median time of one call of `fn` to GPU completion (bench/timing.ts); the first call also tunes. */
const time = (fn: () => void) => medianMs(() => tidy(fn), settled, reps);
const wanted = (op: string) => !only || only.some((o) => op.startsWith(o));

async function row(
  op: string,
  shape: string,
  flops: number | null,
  ours: () => void,
  theirs?: () => Promise<{ ms: number }>,
) {
  if (!wanted(op)) return;
  const ms = await time(ours);
  const tfjsMs = theirs ? (await theirs()).ms : null;
  const r: Row = {
    op,
    shape,
    ms: +ms.toFixed(2),
    gflops: flops ? +(flops / ms / 1e6).toFixed(2) : null,
    tfjsMs: tfjsMs === null ? null : +tfjsMs.toFixed(2),
    ratio: tfjsMs === null ? null : +(tfjsMs / ms).toFixed(2),
  };
  rows.push(r);
  const f = (x: number | null, w: number, s = "") => (x === null ? "" : `${x}${s}`).padStart(w);
  console.log(
    `${op.padEnd(22)}${shape.padEnd(30)}${f(r.ms, 10)}${f(r.gflops, 9)}${f(r.tfjsMs, 11)}${
      f(r.ratio, 8, "x")
    }`,
  );
}

function grads(...ts: Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

const adapter = gpu().adapter, tfjsAdapter = await initTfjs();
console.log(`adapter: ${adapter.description} (fallback: ${adapter.fallback}); tfjs: ${tfjsAdapter}`);
console.log(
  `${"op".padEnd(22)}${"shape".padEnd(30)}${"ms".padStart(10)}${"GFLOPS".padStart(9)}${
    "tfjs ms".padStart(11)
  }${"ratio".padStart(8)}`,
);

// ---- matmul: squares, then the decoder's shapes (x @ W^T as a Linear layer computes it) ----------
for (const n of full ? [512, 1024, 2048] : [512, 1024]) {
  const [a, b] = [randn([n, n]), randn([n, n])];
  await row("matmul", `${n}^3`, 2 * n ** 3, () => F.matmul(a, b), () => tfjsMatmul(n, n, n, 1, reps));
}
const BT = full ? 4096 : 512;
for (const [k, n, what] of [[512, 2048, "FFN"], [512, 15000, "vocab"]] as const) {
  const [x, w] = [randn([BT, k]), randn([n, k])];
  await row(
    `matmul ${what}`,
    `${BT}x${k} @ (${n}x${k})^T`,
    2 * BT * k * n,
    () => F.matmul(x, F.transpose(w)),
    () => tfjsMatmul(BT, k, n, 1, reps),
  );
}
{
  const [x, w] = [randn([1, 512]), randn([15000, 512])];
  await row(
    "matmul decode step",
    `1x512 @ (15000x512)^T`,
    2 * 512 * 15000,
    () => F.matmul(x, F.transpose(w)),
    () => tfjsMatmul(1, 512, 15000, 1, reps),
  );
}

// ---- conv2d: each ResNet stage at 224 input, 3x3 and 1x1 ------------------------------------------
const NB = full ? 8 : 2;
const stages = [[64, 56], [128, 28], [256, 14], [512, 7]] as const;
for (const [[c, s], i] of stages.map((v, i) => [v, i] as const)) {
  for (const k of [3, 1]) {
    const cout = k === 1 ? 4 * c : c, pad = (k - 1) / 2;
    const x = randn([NB, c, s, s], { requiresGrad: true }),
      w = randn([cout, c, k, k], { requiresGrad: true });
    const flops = 2 * NB * c * cout * k * k * s * s, shape = `${NB}x${c}x${s}x${s} ${k}x${k} ->${cout}`;
    await row(
      `conv2d s${i + 1} fwd`,
      shape,
      flops,
      () => F.conv2d(x, w, null, { padding: pad }),
      () => tfjsConv2d(NB, c, s, s, cout, k, 1, pad, reps),
    );
    const bwd = () => {
      F.sum(F.conv2d(x, w, null, { padding: pad })).backward();
      grads(x, w);
    };
    // tfjs's weight-gradient kernel is naive (about 50x its forward): time it only where it finishes
    const tf = i >= 2 || full ? () => tfjsConv2dBackward(NB, c, s, s, cout, k, 1, pad, 1) : undefined;
    await row(`conv2d s${i + 1} fwd+bwd`, shape, 3 * flops, bwd, tf);
  }
}

// ---- conv + batchnorm (running statistics) (+ add) + relu, as ResNet's eval forward runs it: the
// fused epilogue (F.conv2dFused, the batchnorm folded into a scale and shift on each call as
// model/resnet.ts does) against the separate kernels; the ratio is unfused / fused time. Rows:
// "convbn" = conv + bn + relu (a block's first conv), "convbn+add" = conv + bn + residual + relu.
const fusion: {
  op: string;
  shape: string;
  fusedMs: number;
  unfusedMs: number;
  speedup: number;
  range: number[];
}[] = [];
/**
 * After the rows of a fused op and its unfused composition: unfused / fused time, measured in
 * alternating batches (bench/timing.ts, pairedSpeedup), with the range of the pairs.
 */
async function compareFusion(op: string, shape: string, fused: () => void, unfused: () => void) {
  if (!wanted(op)) return;
  const [f, u] = rows.slice(-2);
  const p = await pairedSpeedup(() => tidy(fused), () => tidy(unfused), settled);
  const range = [+p.low.toFixed(2), +p.high.toFixed(2)];
  fusion.push({ op, shape, fusedMs: f.ms, unfusedMs: u.ms, speedup: +p.speedup.toFixed(2), range });
  console.log(
    `${"".padEnd(22)}unfused / fused, paired: ${p.speedup.toFixed(2)}x (pairs ${range.join(" to ")})`,
  );
}
for (const [c, s] of full ? stages : stages.slice(0, 2)) {
  for (const [k, residual] of [[3, false], [3, true], [1, true]] as const) {
    const cout = k === 1 ? 4 * c : c, pad = (k - 1) / 2, opts = { padding: pad };
    const x = randn([NB, c, s, s]), w = randn([cout, c, k, k]);
    const res = residual ? randn([NB, cout, s, s]) : null;
    const [gamma, beta, mean] = [randn([cout]), randn([cout]), randn([cout])];
    const variance = F.add(F.abs(randn([cout])), 0.5);
    const fused = () => {
      const scale = F.mul(gamma, F.rsqrt(F.add(variance, 1e-5)));
      const shift = F.sub(beta, F.mul(mean, scale));
      return F.conv2dFused(x, w, { scale, shift, residual: res, relu: true }, opts);
    };
    const unfused = () => {
      const y = F.batchNorm2d(F.conv2d(x, w, null, opts), mean, variance, gamma, beta, { training: false });
      return F.relu(res ? F.add(y, res) : y);
    };
    const op = `convbn${residual ? "+add" : ""}`, shape = `${NB}x${c}x${s}x${s} ${k}x${k} ->${cout}`;
    const flops = 2 * NB * c * cout * k * k * s * s;
    await row(`${op} fused`, shape, flops, fused);
    await row(`${op} unfused`, shape, flops, unfused);
    await compareFusion(op, shape, fused, unfused);
  }
}

// ---- attention: decoder self-attention (causal) and cross-attention to 49 image tokens -----------
const B = full ? 32 : 4, H = 8, D = 64;
for (const T of [32, 75]) {
  for (const [Tk, causal, what] of [[T, true, "self"], [49, false, "cross"]] as const) {
    const mk = () => randn([B, H, T, D], { requiresGrad: true });
    const [q, k, v] = [
      mk(),
      randn([B, H, Tk, D], { requiresGrad: true }),
      randn([B, H, Tk, D], { requiresGrad: true }),
    ];
    const flops = 4 * B * H * T * Tk * D, shape = `B${B} H${H} T${T} Tk${Tk} d${D}`;
    const unfused = () => {
      let s = F.mul(F.matmul(q, F.transpose(k)), 1 / Math.sqrt(D));
      if (causal) s = F.add(s, causalBias(T, Tk));
      return F.matmul(F.softmax(s), v);
    };
    await row(
      `attn ${what} fwd`,
      shape,
      flops,
      () => F.attention(q, k, v, { causal }),
      () => tfjsAttention(B, H, T, Tk, D, causal, reps),
    );
    await row(`attn ${what} fwd (unfused)`, shape, flops, unfused);
    // a dense output gradient, as the model's output projection hands it back (and as tfjs gets)
    const dO = randn([B, H, T, D]);
    const back = (f: () => Tensor) => () => {
      f().backward(dO);
      grads(q, k, v);
    };
    await row(
      `attn ${what} fwd+bwd`,
      shape,
      3 * flops,
      back(() => F.attention(q, k, v, { causal })),
      () => tfjsAttentionBackward(B, H, T, Tk, D, causal, reps),
    );
    await row(`attn ${what} fwd+bwd (unfused)`, shape, 3 * flops, back(unfused));
    await compareFusion(
      `attn ${what} fwd+bwd`,
      shape,
      back(() => F.attention(q, k, v, { causal })),
      back(unfused),
    );
  }
}

/** 0 where query i may see key j (end-aligned causal), -1e9 elsewhere. */
function causalBias(tq: number, tk: number): Tensor {
  const data = Float32Array.from(
    { length: tq * tk },
    (_, i) => (i % tk > Math.floor(i / tk) + tk - tq ? -1e9 : 0),
  );
  return tensor(data, [tq, tk]);
}

// The tokenizer bench loads transformers.js (its reference), which needs native packages that a
// bare GPU machine may lack: its absence is reported, not fatal to the kernel table.
const tok = only ? null : await import("./tokenizer.ts").then((m) => m.benchTokenizer() ?? null, (e) => {
  console.log(`tokenizer bench skipped: ${String(e.message ?? e).split("\n")[0]}`);
  return null;
});
const more: Record<string, unknown> = {};
if (Deno.args.includes("--all")) {
  more.model = await (await import("./model.ts")).benchModel();
  more.data = await (await import("./data.ts")).benchData();
}
if (Deno.args.includes("--ship")) {
  const file = tuner.shippedFile;
  await Deno.mkdir(new URL(".", file), { recursive: true });
  // entries of variants that no longer exist, or keys of an older form, would never match again
  const current = Object.entries(tuner.entries()).filter(([key]) => keyIsCurrent(key));
  await Deno.writeTextFile(
    file,
    JSON.stringify({ adapter: adapter.description, entries: Object.fromEntries(current) }, null, 2) + "\n",
  );
  console.log(`tuned kernel table written to ${file.pathname}`);
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
const report = {
  date: new Date().toISOString(),
  full,
  adapter,
  tfjsAdapter,
  rows,
  fusion,
  tokenizer: tok,
  ...more,
};
// a partial run (--only) must not replace the last full table
await Deno.writeTextFile(
  new URL(
    only ? `./results/only-${only.join("-").replace(/\W+/g, "_")}.json` : "./results/latest.json",
    import.meta.url,
  ),
  JSON.stringify(report, null, 1) + "\n",
);
