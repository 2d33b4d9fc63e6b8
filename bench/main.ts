// `deno task bench`: times the real code paths on the active WebGPU adapter and writes the table
// to bench/results/latest.json (with the adapter description) so later runs can be compared.

import { F, gpu, randn, tidy } from "../tensor/mod.ts";
import { benchTokenizer } from "./tokenizer.ts";

interface Row {
  op: string;
  shape: string;
  ms: number;
  gflops: number | null;
}

/** Median wall time of `fn` (which records GPU work) including queue completion. */
async function time(fn: () => void, reps = 5): Promise<number> {
  fn();
  await gpu().sync();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    await gpu().sync();
    ts.push(performance.now() - t0);
  }
  return ts.sort((a, b) => a - b)[Math.floor(reps / 2)];
}

const rows: Row[] = [];
async function bench(op: string, shape: string, flops: number | null, fn: () => void) {
  const ms = await time(() => tidy(fn));
  rows.push({ op, shape, ms: +ms.toFixed(3), gflops: flops ? +(flops / ms / 1e6).toFixed(2) : null });
  console.log(
    `${op.padEnd(14)} ${shape.padEnd(28)} ${ms.toFixed(2).padStart(9)} ms  ${
      flops ? (flops / ms / 1e6).toFixed(2) + " GFLOPS" : ""
    }`,
  );
}

const adapter = gpu().adapter;
console.log(`adapter: ${adapter.description} (fallback: ${adapter.fallback})`);
for (const n of [256, 512]) {
  const [a, b] = [randn([n, n]), randn([n, n])];
  await bench("matmul", `${n}x${n}x${n}`, 2 * n ** 3, () => F.matmul(a, b));
}
{
  const [x, w] = [randn([8, 64, 28, 28]), randn([64, 64, 3, 3])];
  await bench(
    "conv2d 3x3",
    "8x64x28x28, 64 out",
    2 * 8 * 64 * 28 * 28 * 64 * 9,
    () => F.conv2d(x, w, null, { padding: 1 }),
  );
}
{
  const x = randn([32 * 20, 512]);
  await bench("softmax", "640x512", null, () => F.softmax(x));
  await bench("layerNorm", "640x512", null, () => F.layerNorm(x, [512]));
}

const tok = benchTokenizer() ?? null;
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/latest.json", import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), adapter, rows, tokenizer: tok }, null, 2) + "\n",
);
