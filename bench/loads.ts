// What one load costs on this adapter, by where the data lives: a storage buffer, a uniform buffer, a
// texture (textureLoad), or the thread's private array as the baseline. Hosts that report the same
// llvmpipe differ here by up to 10x (bench/RESULTS.md, sessions 3, 13 and 16), and which kernel
// variants win follows from it: run this first on a new host.
//
// Each of 16,384 threads runs 256 iterations of 4 independent vec4 loads (addresses differ per lane)
// into 4 accumulators, so nothing waits on a dependency chain. Raw WebGPU; 10 launches per submit,
// the best of 4 submits after one that compiles.
//
//   deno run -A bench/loads.ts

const adapter = await navigator.gpu.requestAdapter();
if (!adapter) throw new Error("no WebGPU adapter");
const device = await adapter.requestDevice();
const THREADS = 16384, ITERS = 256, TEXELS = 1024; // 16 KiB of vec4s: fits a uniform binding

/** The load loop around `fetch`, which loads the vec4 at index i (a WGSL expression) in [0, TEXELS). */
const kernel = (decl: string, fetch: (i: string) => string) => `
${decl}
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  var acc0 = vec4f(0.0); var acc1 = vec4f(0.0); var acc2 = vec4f(0.0); var acc3 = vec4f(0.0);
  for (var it = 0u; it < ${ITERS}u; it++) {
    let base = (gid.x * 7u + it * 4u) % ${TEXELS - 4}u;
    acc0 += ${fetch("base")};
    acc1 += ${fetch("(base + 1u)")};
    acc2 += ${fetch("(base + 2u)")};
    acc3 += ${fetch("(base + 3u)")};
  }
  out[gid.x] = acc0 + acc1 + acc2 + acc3;
}`;

const storage = device.createBuffer({ size: TEXELS * 16, usage: GPUBufferUsage.STORAGE });
const uniform = device.createBuffer({ size: TEXELS * 16, usage: GPUBufferUsage.UNIFORM });
const texture = device.createTexture({
  size: [TEXELS / 16, 16],
  format: "rgba32float",
  usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
});
const out = device.createBuffer({ size: THREADS * 16, usage: GPUBufferUsage.STORAGE });

const cases: { name: string; code: string; resource: GPUBindingResource | null }[] = [
  {
    name: "storage buffer",
    code: kernel("@group(0) @binding(0) var<storage, read> data: array<vec4f>;", (i) => `data[${i}]`),
    resource: { buffer: storage },
  },
  {
    name: "uniform buffer",
    code: kernel(`@group(0) @binding(0) var<uniform> data: array<vec4f, ${TEXELS}>;`, (i) => `data[${i}]`),
    resource: { buffer: uniform },
  },
  {
    name: "texture (textureLoad)",
    code: kernel(
      "@group(0) @binding(0) var data: texture_2d<f32>;",
      (i) => `textureLoad(data, vec2u(${i} % 64u, ${i} / 64u), 0)`,
    ),
    resource: texture.createView(),
  },
  {
    name: "private array",
    // written once per thread first, or the compiler folds loads of a zero-initialised array
    code: kernel(`var<private> data: array<vec4f, ${TEXELS}>;`, (i) => `data[${i}]`).replace(
      "  for (",
      `  data[gid.x % ${TEXELS}u] = vec4f(f32(gid.x));\n  for (`,
    ),
    resource: null,
  },
];

async function time(code: string, resource: GPUBindingResource | null): Promise<number> {
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
  });
  const entries: GPUBindGroupEntry[] = [{ binding: 1, resource: { buffer: out } }];
  if (resource) entries.push({ binding: 0, resource });
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const ms: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const enc = device.createCommandEncoder(), pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    for (let i = 0; i < 10; i++) pass.dispatchWorkgroups(THREADS / 64);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    ms.push((performance.now() - t0) / 10);
  }
  return Math.min(...ms.slice(1));
}

console.log(`adapter: ${adapter.info.description}`);
console.log("| data in | ms per launch | G floats loaded / s |\n| --- | --- | --- |");
for (const { name, code, resource } of cases) {
  const ms = await time(code, resource);
  const floats = THREADS * ITERS * 4 * 4;
  console.log(`| ${name} | ${ms.toFixed(2)} | ${(floats / ms / 1e6).toFixed(2)} |`);
}
