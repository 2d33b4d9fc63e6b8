// Tensor creation, read-back, the PRNG, autograd bookkeeping, and loud failures.

import assert from "node:assert";
import {
  arange,
  device,
  empty,
  F,
  full,
  gpu,
  manualSeed,
  noGrad,
  ones,
  rand,
  randn,
  rngState,
  setRngState,
  tensor,
  tidy,
  zeros,
} from "../tensor/mod.ts";
import { pcg } from "../tensor/random.ts";
import { coalesce } from "../tensor/strided.ts";

const gpuOK = device() === "webgpu";

Deno.test("creation from nested arrays, typed arrays and constants", async () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]], undefined, { device: "cpu" });
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual([...await t.toArray()], [1, 2, 3, 4, 5, 6]);
  assert.equal(tensor(new Int32Array([1, 2]), [2], { device: "cpu" }).dtype, "i32");
  assert.deepEqual([...await arange(2, 8, 2, { device: "cpu" }).toArray()], [2, 4, 6]);
  assert.deepEqual([...await full([2], 7, { device: "cpu", dtype: "f64" }).toArray()], [7, 7]);
  assert.throws(() => tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /do not fill/);
  assert.throws(() => zeros([2, -1]), /invalid shape/);
  assert.throws(() => tensor([0.5], [1], { dtype: "i32" }), /i32 tensor given 0.5/);
});

Deno.test({ name: "WebGPU creation: zeros, ones, full, f32 and i32 read back", ignore: !gpuOK }, async () => {
  assert.deepEqual([...await zeros([3]).toArray()], [0, 0, 0]);
  assert.deepEqual([...await ones([2, 2]).toArray()], [1, 1, 1, 1]);
  assert.deepEqual([...await full([2], -2.5).toArray()], [-2.5, -2.5]);
  const i = tensor(new Int32Array([-3, 7]), [2]);
  assert.equal(i.device, "webgpu");
  assert.deepEqual([...await i.toArray()], [-3, 7]);
  assert.deepEqual([...await F.transpose(tensor([[1, 2], [3, 4]])).toArray()], [1, 3, 2, 4]);
  assert.throws(() => tensor([1], [1], { dtype: "f64" }), /f64 is for the CPU reference/);
});

Deno.test("the PRNG: PCG hash reference values, reproducible streams, identical on every device", async () => {
  // pcg_hash (Jarzynski & Olano 2020) evaluated independently in Python with explicit u32 masking.
  assert.equal(pcg(0), 129708002);
  assert.equal(pcg(1), 2831084092);
  manualSeed(42);
  const a = Array.from(await randn([1000], { device: "cpu", dtype: "f64" }).toArray());
  const state = rngState();
  const b = await rand([5], { device: "cpu" }).toArray();
  setRngState(state);
  assert.deepEqual(await rand([5], { device: "cpu" }).toArray(), b);
  const mean = a.reduce((s, v) => s + v, 0) / a.length,
    sd = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
  assert(Math.abs(mean) < 0.1 && Math.abs(sd - 1) < 0.1, `randn mean ${mean}, sd ${sd}`);
  if (gpuOK) {
    manualSeed(9);
    const g = await randn([64]).toArray();
    manualSeed(9);
    assert.deepEqual(g, await randn([64], { device: "cpu" }).toArray());
    // dropout masks come from the same stream inside a kernel
    manualSeed(5);
    const dg = await F.dropout(ones([300]), 0.4).toArray();
    manualSeed(5);
    assert.deepEqual(dg, await F.dropout(ones([300], { device: "cpu" }), 0.4).toArray());
    const kept = dg.filter((v) => v !== 0).length;
    assert(kept > 150 && kept < 210, `dropout kept ${kept} of 300 at p = 0.4`);
  }
});

Deno.test("autograd: accumulation, reuse of a tensor, noGrad, detach, graph freed", async () => {
  const x = tensor([1, 2, 3], [3], { device: "cpu", dtype: "f64", requiresGrad: true });
  const y = F.sum(F.mul(x, x)); // x used twice
  y.backward();
  assert.deepEqual([...await x.grad!.toArray()], [2, 4, 6]);
  F.sum(x).backward(); // gradients accumulate
  assert.deepEqual([...await x.grad!.toArray()], [3, 5, 7]);
  assert.equal(y.node, null, "the graph is freed by backward");
  assert.equal(noGrad(() => F.mul(x, 2)).requiresGrad, false);
  assert.equal(F.mul(x.detach(), 2).requiresGrad, false);
  assert.throws(() => F.mul(x, 2).backward(), /non-scalar/);
  assert.throws(() => tensor([1], [1], { device: "cpu" }).backward(), /does not require grad/);
});

Deno.test("coalesce merges the dims every view steps across as one, and no others", () => {
  // a head split [B, T, 1, H, dh] of a [B, T, 2, H, dh] buffer, beside a contiguous gradient
  const packedSlice = { offset: 96, strides: [12288, 192, 96, 24, 1] };
  const grad = { offset: 0, strides: [6144, 96, 96, 24, 1] };
  assert.deepStrictEqual(coalesce([32, 64, 1, 4, 24], [packedSlice, grad]), {
    shape: [2048, 96],
    views: [{ offset: 96, strides: [192, 1] }, { offset: 0, strides: [96, 1] }],
  });
  // a transpose merges nothing; a broadcast dim merges with its broadcast neighbour only
  const t = { offset: 0, strides: [1, 3] }, b = { offset: 0, strides: [0, 0, 1] };
  assert.deepStrictEqual(coalesce([3, 2], [t]).shape, [3, 2]);
  assert.deepStrictEqual(coalesce([2, 3, 4], [b]), {
    shape: [6, 4],
    views: [{ offset: 0, strides: [0, 1] }],
  });
  assert.deepStrictEqual(coalesce([1, 1], [{ offset: 5, strides: [7, 9] }]), {
    shape: [],
    views: [{ offset: 5, strides: [] }],
  });
});

Deno.test("reshape is a view wherever the strides allow, a copy elsewhere", async () => {
  const t = arange(0, 24, 1, { device: "cpu" }).reshape([2, 3, 4]);
  const part = F.reshape(F.slice(t, 2, 2, 4), [2, 3, 2, 1]); // each row's last two, as a column
  assert.equal(part.storage, t.storage, "a slice regrouped within its contiguous runs is a view");
  assert.deepEqual([...part.strides], [12, 4, 1, 1]);
  assert.deepEqual([...await part.toArray()], [2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23]);
  const flat = F.reshape(F.transpose(t), [-1]); // no strides read [2, 4, 3] transposed in order
  assert.notEqual(flat.storage, t.storage);
  assert.deepEqual([...await flat.toArray()].slice(0, 4), [0, 4, 8, 1]);
});

Deno.test("bad inputs fail with a clear message", () => {
  const a = tensor([1, 2, 3], [3], { device: "cpu" }), b = tensor([1, 2], [2], { device: "cpu" });
  assert.throws(() => F.add(a, b), /do not broadcast/);
  assert.throws(
    () =>
      F.matmul(tensor([1, 2, 3, 4], [2, 2], { device: "cpu" }), tensor([1, 2, 3], [3, 1], { device: "cpu" })),
    /inner dims/,
  );
  assert.throws(() => F.reshape(a, [2, 2]), /cannot reshape/);
  assert.throws(() => F.sum(a, 3), /axis 3 out of range/);
  assert.throws(
    () =>
      F.embedding(tensor(new Int32Array([0, 9]), [2], { device: "cpu" }), zeros([4, 2], { device: "cpu" })),
    /outside \[0, 4\)/,
  );
  assert.throws(() => tidy(() => Promise.resolve(1) as unknown as number), /synchronous/);
});

Deno.test({ name: "WebGPU dispatches check the adapter's limits first", ignore: !gpuOK }, () => {
  const max = gpu().device.limits.maxStorageBufferBindingSize;
  const big = empty([Math.floor(max / 4) + 1024]);
  try {
    assert.throws(() => F.exp(big), /maxStorageBufferBindingSize/);
  } finally {
    big.dispose();
  }
});
