// Why kernel parameters live in a uniform buffer (kernels/common.ts, bench/RESULTS.md step 55): two
// kernels as the elementwise generator writes them (kernels/elementwise.ts), each timed with its
// parameters bound as the uniform array they are, and bound as a read-only storage array instead.
// A strided copy walks its view (shape and strides, read from params) for every element; a flat add
// reads a few offsets once per thread. Raw WebGPU, 10 launches per submit.
//
//   deno run -A bench/params_uniform.ts

import { MAX_PARAMS, PARAMS } from "../kernels/common.ts";
import { binaryWGSL, unaryWGSL } from "../kernels/elementwise.ts";

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const n = 1 << 20;
const buffer = (bytes: number, usage: number) =>
  device.createBuffer({ size: bytes, usage: usage | GPUBufferUsage.COPY_DST });
const params = buffer(MAX_PARAMS * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE);
const data = [0, 1, 2].map(() => buffer(n * 4, GPUBufferUsage.STORAGE));
// n, shape [64, 128, 128], the output's view (contiguous), the input's ([0, 2, 1] permuted)
const words = new Uint32Array(MAX_PARAMS);
words.set([n, 3, 64, 128, 128, 0, 0, 0, 0, 0, 0, 0, 16384, 128, 1, 0, 0, 0, 0, 0, 0, 16384, 1, 128]);
device.queue.writeBuffer(params, 0, words);

const asStorage = (code: string) => {
  const storage = `@group(0) @binding(0) var<storage, read> params: array<u32>;
fn param(i: u32) -> u32 { return params[i]; }`;
  if (!code.includes(PARAMS)) throw new Error("the kernel does not declare PARAMS");
  return code.replace(PARAMS, storage);
};

async function time(code: string, operands: number, threads: number): Promise<number> {
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [params, ...data.slice(0, operands + 1)].map((buffer, binding) => ({
      binding,
      resource: { buffer },
    })),
  });
  const best: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const enc = device.createCommandEncoder(), pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    for (let i = 0; i < 10; i++) pass.dispatchWorkgroups(Math.ceil(threads / 64));
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    best.push((performance.now() - t0) / 10);
  }
  return Math.min(...best.slice(1)); // the first pays for compiling
}

console.log(`adapter: ${adapter.info.description}`);
const kernels = [
  ["strided copy of 2^20 floats", unaryWGSL("x", ["flat", "strided"]), 1, n],
  ["flat add of 2^20 floats", binaryWGSL("a + b", ["flat", "flat", "flat"]), 2, n / 4],
] as const;
for (const [name, code, operands, threads] of kernels) {
  const [uniform, storage] = [
    await time(code, operands, threads),
    await time(asStorage(code), operands, threads),
  ];
  console.log(
    `${name}: params uniform ${uniform.toFixed(2)} ms, storage ${storage.toFixed(2)} ms (${
      (storage / uniform).toFixed(2)
    }x)`,
  );
}
