import { F, gpu, randn, tidy } from "../../tensor/mod.ts";
import { medianMs } from "../timing.ts";
const shapes: [number, number, number, string][] = [
  [800, 96, 96, "nt"], [800, 96, 96, "nn"], [96, 96, 800, "tn"], [800, 288, 96, "nt"], [800, 256, 96, "nn"],
  [96, 288, 800, "tn"], [2048, 192, 96, "nt"], [96, 192, 2048, "tn"], [1024, 1024, 1024, "nn"],
];
for (const [M, N, K, l] of shapes) {
  const a = l === "tn" ? randn([K, M]) : randn([M, K]);
  const b = l === "nt" ? randn([N, K]) : randn([K, N]);
  const A = l === "tn" ? F.transpose(a) : a, B = l === "nt" ? F.transpose(b) : b;
  const ms = await medianMs(() => tidy(() => void F.matmul(A, B)), () => gpu().done(), 5);
  console.log(`${M}x${N}x${K} ${l}: ${ms.toFixed(2)} ms ${(2 * M * N * K / ms / 1e6).toFixed(2)} GFLOPS`);
}
