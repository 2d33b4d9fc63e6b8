// What a kernel's workgroup memory costs at compile time, by its element count. WGSL zero-initialises
// workgroup memory; on Mesa's GL driver naga writes that as one thread storing every element before a
// barrier, and llvmpipe compiles the result in time quadratic in the count (bench/RESULTS.md step 74).
// On Vulkan (lavapipe) the driver zero-fills in a loop, and the count hardly matters.
//
// Each kernel copies a tile of N vec4s into workgroup memory, waits, and reads one back, in a loop:
// the shape of the tiled kernels' slab loop. Timed: pipeline creation to the end of one launch (the
// driver compiles at first use). Mesa's disk cache would answer the second run, so it is turned off.
//
//   MESA_SHADER_CACHE_DISABLE=true DENO_WEBGPU_BACKEND=gl deno run -A bench/workgroup_compile.ts
//   MESA_SHADER_CACHE_DISABLE=true DENO_WEBGPU_BACKEND=vulkan deno run -A bench/workgroup_compile.ts

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
if (Deno.env.get("MESA_SHADER_CACHE_DISABLE") !== "true") {
  console.log("warning: MESA_SHADER_CACHE_DISABLE is not true; a second run times Mesa's disk cache");
}

const kernel = (n: number, type: string) => `
@group(0) @binding(0) var<uniform> rounds: vec4u;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
var<workgroup> tile: array<${type}, ${n}>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = 0u; i < rounds.x; i++) {
    for (var e = t; e < ${n}u; e += 64u) { tile[e] = ${type}(f32(e + i)); }
    workgroupBarrier();
    acc += tile[(t * 7u + i) % ${n}u]${type === "f32" ? "" : ".x"};
    workgroupBarrier();
  }
  out[t] = acc;
}`;

const rounds = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM });
const out = device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });

async function compileSeconds(code: string): Promise<number> {
  const t0 = performance.now();
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: rounds } }, { binding: 1, resource: { buffer: out } }],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return (performance.now() - t0) / 1000;
}

console.log(
  `adapter: ${adapter.info.description}, timestamp-query ${adapter.features.has("timestamp-query")}`,
);
console.log("| workgroup memory | elements | compile s |\n| --- | --- | --- |");
for (
  const [n, type] of [[512, "f32"], [1024, "f32"], [2048, "f32"], [128, "vec4f"], [256, "vec4f"], [
    512,
    "vec4f",
  ], [1024, "vec4f"]] as const
) {
  const s = await compileSeconds(kernel(n, type));
  console.log(`| ${(n * (type === "f32" ? 4 : 16)) / 1024} KiB as ${type} | ${n} | ${s.toFixed(2)} |`);
}
