// Every kernel variant of an op gives the CPU reference's results, not only the one the tuner picks.

import assert from "node:assert";
import { device, F } from "../tensor/mod.ts";
import { forceVariant, VARIANTS } from "../tensor/webgpu/variants.ts";
import { type Case, relError, run, sampleValues, weightsFor } from "./helpers/check.ts";
import { CASES } from "./op_cases.ts";

// Shapes that cross several workgroup tiles and k slabs with ragged edges (the op cases are smaller
// than one 128 x 128 tile): matmul variants run these too, contiguous and strided.
const x = (shape: number[]) => ({ shape });
const TILE_CASES: Case[] = [
  { inputs: [x([2, 133, 45]), x([2, 45, 141])], fn: F.matmul },
  { inputs: [x([67, 40]), x([150, 40])], fn: (a, b) => F.matmul(a, F.transpose(b)) },
];

for (const [op, variants] of Object.entries(VARIANTS)) {
  for (const v of variants) {
    Deno.test({
      name: `${op} variant ${v.name}: WebGPU forward and backward match the CPU reference`,
      ignore: device() !== "webgpu",
    }, async () => {
      forceVariant(op, v.name);
      try {
        const cases = [...(CASES[op] ?? CASES[op.split("_")[0]]), ...(op === "matmul" ? TILE_CASES : [])];
        for (const [k, c] of cases.entries()) {
          for (const strided of c.contiguousOnly ? [false] : [false, true]) {
            const values = await sampleValues(c.inputs), w = await weightsFor(c, values);
            const [cpu, gpu] = [
              await run(c, values, "cpu", strided, w),
              await run(c, values, "webgpu", strided, w),
            ];
            const at = `case ${k}${strided ? " (strided)" : ""}`;
            assert(relError(gpu.y, cpu.y) <= 1e-4, `${at}: forward error ${relError(gpu.y, cpu.y)}`);
            gpu.grads.forEach((g, i) =>
              g && assert(relError(g, cpu.grads[i]!) <= 1e-4, `${at}: gradient ${i}`)
            );
          }
        }
      } finally {
        forceVariant(op, null);
      }
    });
  }
}
