// Which kernel variant of one attention pass is faster, inside real forward + backward calls: each
// variant's launches are recorded from one call with it forced, then all of them run back to back
// in one timed submission per round (GPU timestamps, as the tuner times candidates), 40 rounds with
// the order rotated. On the shared 2-core hosts a kernel's time drifts by up to 1.5x from one second
// to the next; launches side by side in one submission see the same host, so medians a few percent
// apart mean something here, where separate medians do not (bench/RESULTS.md, session 20).
//
//   deno run -A bench/attention_ab.ts attention_dkv tblock7c2 tblock7c2g16 tblock8c2
//   SHAPES=c32,s75 B=8 deno run -A bench/attention_ab.ts attention_dq tblock8 tblock8c2
//
// Shapes: c<T> is cross-attention of T queries to 49 image tokens, s<T> causal self-attention over T
// (B images, 8 heads, d 64). Variants that do not fit a shape fall back to the tuner's choice.

import { F, gpu, randn, tidy } from "../tensor/mod.ts";
import { median, variantsSideBySide } from "./side_by_side.ts";
import { VARIANTS } from "../tensor/webgpu/variants.ts";

const [op, ...names] = Deno.args;
if (!op?.startsWith("attention") || !VARIANTS[op] || names.length < 2) {
  console.error("usage: deno run -A bench/attention_ab.ts <attention op> <variant> <variant> ...");
  Deno.exit(2);
}
const B = Number(Deno.env.get("B") ?? 4), H = 8, D = 64, ROUNDS = 40;
const shapes = (Deno.env.get("SHAPES") ?? "c32,c75,s32,s75").split(",");
// the pass's launches: its one-row kernel is named for the op, the others for the op and variant
const ofPass = new Set([op, ...VARIANTS[op].map((v) => `${op}_${v.name}`)]);

console.log(`adapter: ${gpu().adapter.description}; ${op}, ${ROUNDS} rounds, ms per call`);
for (const shape of shapes) {
  const T = Number(shape.slice(1)), causal = shape[0] === "s", Tk = causal ? T : 49;
  const [q, k, v] = [T, Tk, Tk].map((t) => randn([B, H, t, D], { requiresGrad: true }));
  const dO = randn([B, H, T, D]);
  const call = () =>
    tidy(() => {
      F.attention(q, k, v, { causal }).backward(dO);
      for (const t of [q, k, v]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  // the pass's launches
  const { launches, ms } = await variantsSideBySide(op, names, call, ROUNDS, (d) => ofPass.has(d.name));
  const ran = (i: number) => [...new Set(launches[i].map((d) => d.name))].join("+");
  console.log(
    `${shape} (B${B} Tq${T} Tk${Tk}): ` +
      names.map((n, i) =>
        `${n} [${ran(i)}] median ${median(ms[i]).toFixed(3)} best ${Math.min(...ms[i]).toFixed(3)}`
      )
        .join(" | "),
  );
}
