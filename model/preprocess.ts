// torchvision's ImageNet transforms for the ResNet weights (Resize(256), CenterCrop(224),
// ToTensor, Normalize(mean, std)) on decoded pixels. This is the only place images are normalised:
// the encoder expects its output and never normalises again (the seed did it twice).
//
// Resize is bilinear with antialiasing, as PIL (what torchvision uses for PIL images) and
// torch's `antialias=True` compute it: a triangle filter stretched by the scale factor when
// shrinking. 8-bit input follows PIL bit for bit (fixed-point weights, rounding to 8 bits after the
// horizontal and the vertical pass); float input follows torch on float tensors (no rounding).

import { type Tensor, tensor, type TensorOptions } from "../tensor/mod.ts";

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** Decoded pixels, values 0..255, rows top to bottom. */
export interface Pixels {
  data: Uint8Array | Uint8ClampedArray | Float32Array;
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA, alpha ignored) */
  channels: 3 | 4;
  /** "hwc" (interleaved, what decoders give; default) or "chw" (planar) */
  layout?: "hwc" | "chw";
}

export interface PreprocessOptions {
  /** the shorter side is resized to this (default 256) */
  resize?: number;
  /** then the centre square of this side is kept (default 224) */
  crop?: number;
  mean?: readonly number[];
  std?: readonly number[];
}

/** The normalised [3, crop, crop] image, planar (CHW) float32. */
export function preprocess(img: Pixels, o: PreprocessOptions = {}): Float32Array {
  const size = o.resize ?? 256, crop = o.crop ?? 224;
  const mean = o.mean ?? IMAGENET_MEAN, std = o.std ?? IMAGENET_STD;
  const { width: W, height: H, channels: C } = img;
  if (!(W > 0 && H > 0 && Number.isInteger(W) && Number.isInteger(H)) || (C !== 3 && C !== 4)) {
    throw new Error(`preprocess: bad image ${W}x${H} with ${C} channels`);
  }
  if (img.data.length !== W * H * C) {
    throw new Error(`preprocess: ${img.data.length} values for a ${W}x${H}x${C} image`);
  }
  const [outW, outH] = resizedSize(W, H, size);
  if (crop > outW || crop > outH) {
    throw new Error(`preprocess: crop ${crop} larger than the resized ${outW}x${outH} image`);
  }
  // torchvision's center_crop: int(round((h - crop) / 2.0)), Python's round (half to even).
  const top = roundHalfEven((outH - crop) / 2), left = roundHalfEven((outW - crop) / 2);
  const eightBit = !(img.data instanceof Float32Array);
  const planar = img.layout === "chw";
  const at = (c: number, y: number, x: number) => planar ? (c * H + y) * W + x : (y * W + x) * C + c;

  // Only the crop window is computed: both passes are separable, so this equals resize-then-crop.
  const cols = coefficients(W, outW, left, crop), rows = coefficients(H, outH, top, crop);
  const y0 = rows.first, ny = rows.last - rows.first;
  const out = new Float32Array(3 * crop * crop);
  const tmp = new Float64Array(ny * crop);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < crop; x++) {
        tmp[y * crop + x] = cols.apply(x, (i) => img.data[at(c, y0 + y, i)], eightBit);
      }
    }
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        const v = rows.apply(y, (i) => tmp[(i - y0) * crop + x], eightBit);
        out[(c * crop + y) * crop + x] = (v / 255 - mean[c]) / std[c];
      }
    }
  }
  return out;
}

/** A batch of preprocessed images as an [N, 3, crop, crop] tensor. */
export function imageBatch(images: Float32Array[], crop = 224, o: TensorOptions = {}): Tensor {
  const n = 3 * crop * crop, data = new Float32Array(images.length * n);
  images.forEach((im, i) => {
    if (im.length !== n) {
      throw new Error(`imageBatch: image ${i} has ${im.length} values, expected 3x${crop}x${crop}`);
    }
    data.set(im, i * n);
  });
  return tensor(data, [images.length, 3, crop, crop], o);
}

/** torchvision's Resize(size) for an int size: the shorter side becomes `size`, the other is truncated. */
export function resizedSize(W: number, H: number, size: number): [number, number] {
  return W <= H ? [size, Math.trunc((size * H) / W)] : [Math.trunc((size * W) / H), size];
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const PRECISION_BITS = 32 - 8 - 2; // PIL's fixed-point precision for 8-bit images

interface Coefficients {
  /** input range [first, last) the selected outputs read */
  first: number;
  last: number;
  apply(out: number, read: (i: number) => number, eightBit: boolean): number;
}

/**
 * Antialiased bilinear weights for outputs [from, from + n) of a resize `inSize` -> `outSize`
 * (PIL's precompute_coeffs; torch's _upsample_bilinear2d_aa computes the same weights).
 */
function coefficients(inSize: number, outSize: number, from: number, n: number): Coefficients {
  const scale = inSize / outSize, filterScale = Math.max(scale, 1), support = filterScale;
  const starts: number[] = [], weights: number[][] = [], fixed: number[][] = [];
  let first = inSize, last = 0;
  for (let o = from; o < from + n; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    let total = 0;
    for (let x = xmin; x < xmax; x++) {
      const t = Math.abs((x - center + 0.5) / filterScale);
      w.push(t < 1 ? 1 - t : 0);
      total += w.at(-1)!;
    }
    const normed = w.map((v) => (total === 0 ? v : v / total));
    starts.push(xmin);
    weights.push(normed);
    fixed.push(
      normed.map((v) => Math.trunc(v < 0 ? -0.5 + v * 2 ** PRECISION_BITS : 0.5 + v * 2 ** PRECISION_BITS)),
    );
    first = Math.min(first, xmin);
    last = Math.max(last, xmax);
  }
  return {
    first,
    last,
    apply(out, read, eightBit) {
      const s = starts[out];
      if (!eightBit) {
        const w = weights[out];
        let acc = 0;
        for (let i = 0; i < w.length; i++) acc += w[i] * read(s + i);
        return acc;
      }
      const k = fixed[out];
      let acc = 2 ** (PRECISION_BITS - 1);
      for (let i = 0; i < k.length; i++) acc += k[i] * read(s + i);
      return Math.min(255, Math.max(0, Math.floor(acc / 2 ** PRECISION_BITS)));
    },
  };
}
