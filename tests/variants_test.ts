// Every kernel variant of an op gives the CPU reference's results, not only the one the tuner picks.

import assert from "node:assert";
import { device } from "../tensor/mod.ts";
import { forceVariant, VARIANTS } from "../tensor/webgpu/variants.ts";
import { relError, run, sampleValues, weightsFor } from "./helpers/check.ts";
import { CASES } from "./op_cases.ts";

for (const [op, variants] of Object.entries(VARIANTS)) {
  for (const v of variants) {
    Deno.test({
      name: `${op} variant ${v.name}: WebGPU forward and backward match the CPU reference`,
      ignore: device() !== "webgpu",
    }, async () => {
      forceVariant(op, v.name);
      try {
        for (const [k, c] of (CASES[op] ?? CASES[op.split("_")[0]]).entries()) {
          const values = await sampleValues(c.inputs), w = await weightsFor(c, values);
          const [cpu, gpu] = [
            await run(c, values, "cpu", false, w),
            await run(c, values, "webgpu", false, w),
          ];
          assert(relError(gpu.y, cpu.y) <= 1e-4, `case ${k}: forward error ${relError(gpu.y, cpu.y)}`);
          gpu.grads.forEach((g, i) =>
            g && assert(relError(g, cpu.grads[i]!) <= 1e-4, `case ${k}: gradient ${i}`)
          );
        }
      } finally {
        forceVariant(op, null);
      }
    });
  }
}
