// Which conv2d variants are faster, side by side, forward (`conv2d`) or weight gradient
// (`conv2d_weight`): each forced variant's launches (texture copies and packs included; for the
// weight gradient its own launches only) are recorded from one real call, then all of them run back
// to back in one timed submission per round, 20 rounds with the order rotated
// (bench/side_by_side.ts; why: bench/RESULTS.md, session 20).
//
//   deno run -A bench/conv_ab.ts conv2d rows16x8r2 trows16x8r2
//   SHAPES=32x32x16x16-32k3s1 deno run -A bench/conv_ab.ts conv2d_weight twrows8x2 twrows16x2
//
// A shape is N x Cin x H x W - Cout, kernel k x k, stride s, padding k / 2: by default the default
// model's encoder convs at batch 32. CAPTIONER_TUNE=0 keeps the tuner from measuring what the
// forced variant does not cover.

import { F, gpu, randn, tidy } from "../tensor/mod.ts";
import type { Dispatch } from "../tensor/webgpu/runtime.ts";
import { median, variantsSideBySide } from "./side_by_side.ts";
import { VARIANTS } from "../tensor/webgpu/variants.ts";

const [op, ...names] = Deno.args;
if (
  (op !== "conv2d" && op !== "conv2d_weight") || names.length < 2 ||
  names.some((n) => !VARIANTS[op].some((v) => v.name === n))
) {
  console.error("usage: deno run -A bench/conv_ab.ts conv2d|conv2d_weight <variant> <variant> ...");
  Deno.exit(2);
}
const ROUNDS = 20;
const shapes =
  (Deno.env.get("SHAPES") ?? "32x3x64x64-32k3s2,32x32x16x16-32k3s1,32x64x8x8-64k3s1,32x32x16x16-64k3s2")
    .split(",");

console.log(`adapter: ${gpu().adapter.description}; ${op}, ${ROUNDS} rounds, ms per call (median / best)`);
for (const shape of shapes) {
  const m = shape.match(/^(\d+)x(\d+)x(\d+)x(\d+)-(\d+)k(\d+)s(\d+)$/);
  if (!m) throw new Error(`conv_ab: shape "${shape}" is not NxCinxHxW-CoutKkSs`);
  const [N, Cin, H, W, Cout, k, s] = m.slice(1).map(Number);
  const x = randn([N, Cin, H, W]), w = randn([Cout, Cin, k, k], { requiresGrad: op === "conv2d_weight" });
  const conv = () => F.conv2d(x, w, null, { stride: s, padding: k >> 1 });
  const call = op === "conv2d" ? () => tidy(conv) : () =>
    tidy(() => {
      F.sum(conv()).backward();
      w.grad?.dispose();
      w.grad = null;
    });
  // the weight gradient's own launches (the forward and the packs of x and dy are not timed)
  const keep = op === "conv2d" ? undefined : (d: Dispatch) => d.name.startsWith(op);
  const { launches, ms } = await variantsSideBySide(op, names, call, ROUNDS, keep);
  const ran = (i: number) => launches[i].map((d) => (d.copy ? "copy" : d.name)).join("+");
  console.log(
    `${shape}: ` +
      names.map((n, i) => `${n} [${ran(i)}] ${median(ms[i]).toFixed(2)} / ${Math.min(...ms[i]).toFixed(2)}`)
        .join(" | "),
  );
}
