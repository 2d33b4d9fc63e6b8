// Preprocessing parity with torchvision (Resize, CenterCrop, ToTensor, Normalize): on 8-bit pixels
// against the PIL pipeline, on float pixels against torch's antialiased resize of a float tensor.

import assert from "node:assert";
import { readSafetensors } from "../tensor/io/safetensors.ts";
import { imageBatch, IMAGENET_MEAN, IMAGENET_STD, preprocess, resizedSize } from "../model/mod.ts";

const path = new URL("./fixtures/model_preprocess.safetensors", import.meta.url).pathname;
const SIZES: Record<string, [number, number]> = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/model_preprocess.json", import.meta.url)),
);
const { tensors } = await readSafetensors(path);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const [i, key] of Object.keys(SIZES).entries()) {
  Deno.test(`preprocess parity, image ${SIZES[key].join("x")}: 8-bit as PIL, float as torch`, () => {
    const [width, height] = SIZES[key];
    const hwc = tensors.get(key)!.data;
    const o = { resize: 64, crop: 56 };
    const pil = preprocess({ data: Uint8Array.from(hwc), width, height, channels: 3 }, o);
    // PIL's fixed-point arithmetic is reproduced exactly: the only error is float32 rounding.
    const ePil = maxDiff(pil, tensors.get(`pil${i}`)!.data);
    assert(ePil < 1e-5, `8-bit path: max difference ${ePil}`);
    const float = preprocess({ data: Float32Array.from(hwc), width, height, channels: 3 }, o);
    const eFloat = maxDiff(float, tensors.get(`float${i}`)!.data);
    assert(eFloat < 1e-4, `float path: max difference ${eFloat}`);
    if (Deno.env.get("PARITY_VERBOSE")) {
      console.log(`${key}: PIL path ${ePil.toExponential(2)}, float path ${eFloat.toExponential(2)}`);
    }
  });
}

Deno.test("preprocess: defaults are Resize(256), CenterCrop(224), ImageNet mean/std; layouts agree", () => {
  assert.deepEqual(resizedSize(640, 480, 256), [341, 256]);
  assert.deepEqual(resizedSize(300, 500, 256), [256, 426]);
  const [w, h] = [300, 200];
  const constant = preprocess({
    data: new Uint8Array(w * h * 4).fill(128),
    width: w,
    height: h,
    channels: 4,
  });
  assert.equal(constant.length, 3 * 224 * 224);
  for (let c = 0; c < 3; c++) {
    const want = (128 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
    assert(Math.abs(constant[c * 224 * 224 + 1234] - want) < 1e-6);
  }
  // The same pixels interleaved (HWC) or planar (CHW) give the same result.
  const [W, H] = [70, 90];
  const hwc = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 256);
  const chw = new Uint8Array(hwc.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) chw[(c * H + y) * W + x] = hwc[(y * W + x) * 3 + c];
    }
  }
  const o = { resize: 64, crop: 48 };
  assert.deepEqual(
    preprocess({ data: chw, width: W, height: H, channels: 3, layout: "chw" }, o),
    preprocess({ data: hwc, width: W, height: H, channels: 3 }, o),
  );
  const batch = imageBatch([constant, constant]);
  assert.deepEqual(batch.shape, [2, 3, 224, 224]);
  batch.dispose();
});

Deno.test("preprocess: bad input is refused with a clear message", () => {
  assert.throws(
    () => preprocess({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }),
    /10 values for a 4x4x3 image/,
  );
  assert.throws(() => preprocess({ data: new Uint8Array(0), width: 0, height: 4, channels: 3 }), /bad image/);
  assert.throws(() => imageBatch([new Float32Array(5)]), /image 0 has 5 values/);
});
