// Which matmul variants are faster, side by side: each forced variant's launches (texture copies
// included) are recorded from one real call, then all of them run back to back in one timed
// submission per round, 20 rounds with the order rotated, as bench/attention_ab.ts does for
// attention (why: bench/RESULTS.md, session 20).
//
//   deno run -A bench/matmul_ab.ts tex_16x16 vec4_32x32
//   SHAPES=1024x1024x1024,2048x96x64 deno run -A bench/matmul_ab.ts tex_8x8 tex_16x16
//
// Shapes are M x N x K of a plain [M, K] @ [K, N] product. CAPTIONER_TUNE=0 keeps the tuner from
// measuring what the forced variant does not cover.

import { F, gpu, randn, tidy } from "../tensor/mod.ts";
import { median, variantsSideBySide } from "./side_by_side.ts";
import { VARIANTS } from "../tensor/webgpu/variants.ts";

const names = Deno.args;
if (names.length < 2 || names.some((n) => !VARIANTS.matmul.some((v) => v.name === n))) {
  console.error("usage: deno run -A bench/matmul_ab.ts <matmul variant> <matmul variant> ...");
  Deno.exit(2);
}
const ROUNDS = 20;
const shapes = (Deno.env.get("SHAPES") ?? "1024x1024x1024,512x2048x512,2048x96x64").split(",")
  .map((s) => s.split("x").map(Number));

console.log(`adapter: ${gpu().adapter.description}; matmul, ${ROUNDS} rounds, ms per call (median / best)`);
for (const [M, N, K] of shapes) {
  const a = randn([M, K]), b = randn([K, N]);
  // the call's launches: its texture copies or packs, and the product
  const { launches, ms } = await variantsSideBySide(
    "matmul",
    names,
    () => tidy(() => F.matmul(a, b)),
    ROUNDS,
  );
  const ran = (i: number) => launches[i].map((d) => (d.copy ? "copy" : d.name)).join("+");
  console.log(
    `${M}x${N}x${K}: ` +
      names.map((n, i) => `${n} [${ran(i)}] ${median(ms[i]).toFixed(2)} / ${Math.min(...ms[i]).toFixed(2)}`)
        .join(" | "),
  );
}
