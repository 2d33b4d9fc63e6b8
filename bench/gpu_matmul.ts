// Square fp32 matmuls (1024, 2048, 4096) on this machine's adapter: every matmul variant forced in
// turn, then the tuner's own choice, beside tfjs-webgpu on the same adapter, timed as
// bench/timing.ts says (batches of back-to-back products, one wait each). Every variant's 4096 product is compared with the
// first one's: a kernel that silently drops a tile shows up here. Writes bench/results/gpu_matmul.json.
//
//   deno run -A bench/gpu_matmul.ts [--sizes 1024,2048,4096]
// bench/torch_matmul.py is the reference beside it on an NVIDIA card (PyTorch fp32, TF32 off).

import { F, gpu, randn, type Tensor, tidy } from "../tensor/mod.ts";
import { forceVariant, VARIANTS } from "../tensor/webgpu/variants.ts";
import { tuner } from "../tensor/webgpu/tuner.ts";
import { initTfjs, tfjsMatmul } from "./tfjs.ts";
import { medianMs } from "./timing.ts";

const sizesArg = Deno.args[Deno.args.indexOf("--sizes") + 1];
const sizes = Deno.args.includes("--sizes") ? sizesArg.split(",").map(Number) : [1024, 2048, 4096];
const adapter = gpu().adapter, tfjsAdapter = await initTfjs();
console.log(`adapter: ${adapter.description} (fallback: ${adapter.fallback}); tfjs: ${tfjsAdapter}`);

const timeMs = (fn: () => Tensor) =>
  medianMs(() => tidy(() => void fn()), async () => {
    await tuner.settled();
    await gpu().done();
  });

const rows: { n: number; variant: string; ms: number; tflops: number; maxRelDiff?: number }[] = [];
for (const n of sizes) {
  const [a, b] = [randn([n, n]), randn([n, n])];
  const flops = 2 * n ** 3;
  let first: Float32Array | null = null;
  const names = [...VARIANTS.matmul.filter((v) => !(v.reference && n > 2048)).map((v) => v.name), "tuned"];
  for (const name of names) {
    forceVariant("matmul", name === "tuned" ? null : name);
    const ms = await timeMs(() => F.matmul(a, b));
    const row: (typeof rows)[number] = {
      n,
      variant: name,
      ms: +ms.toFixed(3),
      tflops: +(flops / ms / 1e9).toFixed(3),
    };
    if (n === sizes.at(-1)) {
      const c = F.matmul(a, b), out = new Float32Array(await c.toArray() as ArrayLike<number>);
      c.dispose();
      first ??= out;
      let num = 0, den = 1e-30;
      for (let i = 0; i < out.length; i++) {
        num = Math.max(num, Math.abs(out[i] - first[i]));
        den = Math.max(den, Math.abs(first[i]));
      }
      row.maxRelDiff = num / den;
    }
    rows.push(row);
    console.log(
      `matmul ${n}^3 ${name.padEnd(12)} ${ms.toFixed(3).padStart(9)} ms ${
        row.tflops.toFixed(3).padStart(8)
      } TFLOPS${
        row.maxRelDiff === undefined
          ? ""
          : `  max rel diff vs ${names[0]}: ${row.maxRelDiff.toExponential(1)}`
      }`,
    );
  }
  forceVariant("matmul", null);
  const tf = await tfjsMatmul(n, n, n, 1, 3);
  rows.push({ n, variant: "tfjs-webgpu", ms: +tf.ms.toFixed(3), tflops: +(flops / tf.ms / 1e9).toFixed(3) });
  console.log(
    `matmul ${n}^3 ${"tfjs-webgpu".padEnd(12)} ${tf.ms.toFixed(3).padStart(9)} ms ${
      (flops / tf.ms / 1e9).toFixed(3).padStart(8)
    } TFLOPS`,
  );
  a.dispose();
  b.dispose();
}
await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
await Deno.writeTextFile(
  new URL("./results/gpu_matmul.json", import.meta.url),
  JSON.stringify(
    { date: new Date().toISOString(), adapter, tfjsAdapter, rows, tuned: tuner.entries() },
    null,
    1,
  ) + "\n",
);
