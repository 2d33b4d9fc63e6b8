import { F, gpu, randn, tidy } from "../../tensor/mod.ts";
import { forceVariant, VARIANTS } from "../../tensor/webgpu/variants.ts";
import { medianMs } from "../timing.ts";
const shapes: [number, number, number, string][] = [
  [800, 96, 96, "nt"], [800, 96, 96, "nn"], [96, 96, 800, "tn"], [800, 288, 96, "nt"], [800, 96, 288, "nn"],
  [96, 288, 800, "tn"], [2048, 192, 96, "nt"], [96, 192, 2048, "tn"], [2048, 96, 64, "nt"],
];
const names = VARIANTS.matmul.filter((v) => !v.reference && !v.gpuOnly).map((v) => v.name);
for (const [M, N, K, l] of shapes) {
  const a = l === "tn" ? randn([K, M]) : randn([M, K]);
  const b = l === "nt" ? randn([N, K]) : randn([K, N]);
  const A = l === "tn" ? F.transpose(a) : a, B = l === "nt" ? F.transpose(b) : b;
  const row: string[] = [];
  for (const n of names) {
    forceVariant("matmul", n);
    const ms = await medianMs(() => tidy(() => void F.matmul(A, B)), () => gpu().done(), 3, 30);
    row.push(`${n}:${ms.toFixed(1)}`);
  }
  forceVariant("matmul", null);
  const ms = await medianMs(() => tidy(() => void F.matmul(A, B)), () => gpu().done(), 3, 30);
  console.log(`${M}x${N}x${K} ${l} tuned ${ms.toFixed(1)} | ${row.join(" ")}`);
}
