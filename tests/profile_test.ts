// The profiler counts every launch under its kernel's name and reads their GPU times back.

import assert from "node:assert";
import { device, F, gpu, randn, tidy } from "../tensor/mod.ts";
import { forceVariant } from "../tensor/webgpu/variants.ts";

Deno.test({
  name: "profiler: launches counted per kernel, GPU times non-negative, off again afterwards",
  ignore: device() !== "webgpu" || !gpu().device.features.has("timestamp-query"),
}, async () => {
  const [a, b] = [randn([33, 17]), randn([17, 9])];
  forceVariant("matmul", "blocked4x4"); // no first-use tuning: every call is one launch
  gpu().startProfile();
  for (let i = 0; i < 3; i++) tidy(() => void F.add(F.matmul(a, b), 1));
  const rows = await gpu().stopProfile();
  forceVariant("matmul", null);
  const launches = Object.fromEntries(rows.map((r) => [r.name, r.launches]));
  assert.strictEqual(launches["add"], 3, JSON.stringify(rows));
  assert.strictEqual(
    Object.entries(launches).filter(([n]) => n.startsWith("matmul")).reduce((s, [, c]) => s + c, 0),
    3,
  );
  assert(rows.every((r) => Number.isFinite(r.ms) && r.ms >= 0), JSON.stringify(rows));
  assert.deepStrictEqual(await gpu().stopProfile(), []);
  a.dispose();
  b.dispose();
});
