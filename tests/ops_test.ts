// Every registered op, every case: float64 gradient check on the CPU, then WebGPU forward and
// backward against the CPU reference, with contiguous and with non-contiguous (transposed) inputs.

import assert from "node:assert";
import { device, manualSeed } from "../tensor/mod.ts";
import { numericGrads, relError, run, sampleValues, weightsFor } from "./helpers/check.ts";
import { CASES } from "./op_cases.ts";

const GRAD_TOL = 1e-6, GPU_TOL = 1e-4;
const hasGPU = device() === "webgpu";

for (const [name, cases] of Object.entries(CASES)) {
  Deno.test(`op ${name}: f64 gradient check, WebGPU forward and backward`, async () => {
    for (const [k, c] of cases.entries()) {
      for (const strided of c.contiguousOnly ? [false] : [false, true]) {
        const where = `${name} case ${k}${strided ? " (non-contiguous)" : ""}`;
        manualSeed(1000 + k);
        const values = await sampleValues(c.inputs);
        const w = await weightsFor(c, values);
        const cpu = await run(c, values, "cpu", strided, w);
        const numeric = numericGrads(c, values, strided, w);
        numeric.forEach((n, i) => {
          if (!n) return;
          const e = relError(cpu.grads[i]!, n);
          assert(
            e <= GRAD_TOL,
            `${where}: input ${i} gradient check error ${e.toExponential(2)} > ${GRAD_TOL}`,
          );
        });
        if (!hasGPU) continue;
        const gpu = await run(c, values, "webgpu", strided, w);
        const ef = relError(gpu.y, cpu.y);
        assert(ef <= GPU_TOL, `${where}: WebGPU forward error ${ef.toExponential(2)} > ${GPU_TOL}`);
        gpu.grads.forEach((g, i) => {
          if (!g) return;
          const e = relError(g, cpu.grads[i]!);
          assert(
            e <= GPU_TOL,
            `${where}: WebGPU backward of input ${i} error ${e.toExponential(2)} > ${GPU_TOL}`,
          );
        });
      }
    }
  });
}
