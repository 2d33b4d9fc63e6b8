// Why kernels read `params` before their loops (bench/RESULTS.md step 44): an add of 2^20 floats,
// raw WebGPU, 10 launches per submit, as the elementwise kernel generates it (kernels/elementwise.ts)
// and with the same loop reading its offsets and count from `params` at each element. `out` is read_write
// storage that may alias `params` for all the compiler knows, so the second form loads them again
// after every store.
//
//   deno run -A bench/params_alias.ts

import { binaryWGSL } from "../kernels/elementwise.ts";

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const n = 1 << 20, perThread = 4;
const buffer = (words: number) =>
  device.createBuffer({ size: words * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const [params, a, b, out] = [buffer(64), buffer(n), buffer(n), buffer(n)];
const p = new Uint32Array(64);
p[0] = n; // offsets (params[10], [19], [28]) stay 0: flat views from the start of each buffer
device.queue.writeBuffer(params, 0, p);

const hoisted = binaryWGSL("a + b", ["flat", "flat", "flat"]);
const inLoop = hoisted
  .replace(/ {2}let (out|a|b)_at = params\[(\d+)u\];\n/g, "")
  .replaceAll("out_at", "params[10u]").replaceAll("a_at", "params[19u]").replaceAll("b_at", "params[28u]")
  .replace("if (i >= n)", "if (i >= params[0])");
if (inLoop.includes("_at") || !inLoop.includes("i >= params[0]")) {
  throw new Error("the elementwise kernel changed shape");
}

async function time(code: string): Promise<number> {
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [params, a, b, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const best: number[] = [];
  for (let rep = 0; rep < 4; rep++) {
    const enc = device.createCommandEncoder(), pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    for (let i = 0; i < 10; i++) pass.dispatchWorkgroups(n / perThread / 64);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    best.push((performance.now() - t0) / 10);
  }
  return Math.min(...best.slice(1)); // the first pays for compiling
}

console.log(`adapter: ${adapter.info.description}`);
const [fast, slow] = [await time(hoisted), await time(inLoop)];
console.log(`add 2^20, params read before the loop: ${fast.toFixed(2)} ms`);
console.log(`add 2^20, params read in the loop:     ${slow.toFixed(2)} ms (${(slow / fast).toFixed(2)}x)`);
