// A/B of forced matmul variants, launches side by side in rotated rounds (like bench/attention_ab.ts)
import { F, gpu, randn, tidy } from "./tensor/mod.ts";
import type { Dispatch } from "./tensor/webgpu/runtime.ts";
import { tuner } from "./tensor/webgpu/tuner.ts";
import { forceVariant, VARIANTS } from "./tensor/webgpu/variants.ts";
const names = Deno.args;
const shapes = (Deno.env.get("SHAPES") ?? "1024x1024x1024,512x2048x512,2048x96x64").split(",").map((s) => s.split("x").map(Number));
const ROUNDS = 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ofOp = new Set(VARIANTS.matmul.map((v) => `matmul_${v.name}`).concat(["matmul"]));
for (const [M, N, K] of shapes) {
  const a = randn([M, K]), b = randn([K, N]);
  const launches: Dispatch[][] = [];
  for (const name of names) {
    forceVariant("matmul", name);
    tidy(() => F.matmul(a, b));
    await tuner.settled(); await gpu().done();
    const mine: Dispatch[] = [], run = gpu().run;
    gpu().run = (d: Dispatch) => void (d.name.startsWith("matmul") || d.copy || d.name.startsWith("pack") ? mine.push(d) : run.call(gpu(), d));
    try { tidy(() => F.matmul(a, b)); } finally { gpu().run = run; }
    launches.push(mine);
  }
  forceVariant("matmul", null);
  const ms: number[][] = names.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.map((_, i) => (i + r) % names.length);
    const times = await gpu().timed(order.flatMap((i) => launches[i]));
    let at = 0;
    for (const i of order) ms[i].push(times.slice(at, at += launches[i].length).reduce((x, y) => x + y, 0));
  }
  console.log(`${M}x${N}x${K}: ` + names.map((n, i) => `${n} [${launches[i].map((d) => d.copy ? "copy" : d.name).join("+")}] ${median(ms[i]).toFixed(2)}/${Math.min(...ms[i]).toFixed(2)}`).join(" | "));
}
