// From decoded RGB to the model's input: one affine resampling (resize, crop, zoom, rotation and flip
// together, so the image is interpolated once), photometric ops, then normalisation, exactly once.
import type { AugmentPlan } from "./augment.ts";
import { decodeRgb, encodeRgb, type Rgb } from "./codecs.ts";
import { rng } from "./rng.ts";

/** Halve with a 2x2 box filter: bilinear sampling alone would alias when shrinking by more than 2. */
export function halve(src: Rgb): Rgb {
  const width = src.width >> 1, height = src.height >> 1, s = src.data, w3 = src.width * 3;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (2 * y) * w3 + 6 * x, o = 3 * (y * width + x);
      for (let c = 0; c < 3; c++) {
        data[o + c] = (s[i + c] + s[i + 3 + c] + s[i + w3 + c] + s[i + w3 + 3 + c] + 2) >> 2;
      }
    }
  }
  return { width, height, data };
}

/** Sample `size` x `size` HWC floats in [0, 1]. The crop is the centred square of the short side,
 * shrunk by the plan's zoom, shifted by its offsets, rotated and mirrored about its centre. */
export function resample(src: Rgb, size: number, plan: AugmentPlan): Float32Array {
  while (Math.min(src.width, src.height) >= 4 * size * plan.zoom) src = halve(src);
  const { width: w, height: h, data } = src;
  const side = Math.min(w, h) / plan.zoom, step = side / size;
  const cx = w / 2 + plan.offsetX * (w - side) / 2, cy = h / 2 + plan.offsetY * (h - side) / 2;
  const cos = Math.cos(plan.angle), sin = Math.sin(plan.angle), mirror = plan.flip ? -1 : 1;
  const out = new Float32Array(size * size * 3);
  for (let v = 0; v < size; v++) {
    const dy = (v + 0.5 - size / 2) * step;
    for (let u = 0; u < size; u++) {
      const dx = mirror * (u + 0.5 - size / 2) * step;
      // Pixel centres sit at +0.5; clamping replicates the edge where a rotated corner leaves the image.
      const x = Math.min(w - 1, Math.max(0, cx + cos * dx - sin * dy - 0.5));
      const y = Math.min(h - 1, Math.max(0, cy + sin * dx + cos * dy - 0.5));
      const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
      const x1 = Math.min(w - 1, x0 + 1), y1 = Math.min(h - 1, y0 + 1);
      const a = 3 * (y0 * w + x0), b = 3 * (y0 * w + x1), c = 3 * (y1 * w + x0), d = 3 * (y1 * w + x1);
      const o = 3 * (v * size + u);
      for (let k = 0; k < 3; k++) {
        const top = data[a + k] + (data[b + k] - data[a + k]) * fx;
        const bottom = data[c + k] + (data[d + k] - data[c + k]) * fx;
        out[o + k] = (top + (bottom - top) * fy) / 255;
      }
    }
  }
  return out;
}

/** 3x3 binomial blur of HWC floats, edges replicated. */
function blur3(img: Float32Array, size: number): Float32Array {
  const out = new Float32Array(img.length), wts = [1, 2, 1];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let k = 0; k < 3; k++) {
        let sum = 0;
        for (let j = -1; j <= 1; j++) {
          const yy = Math.min(size - 1, Math.max(0, y + j));
          for (let i = -1; i <= 1; i++) {
            const xx = Math.min(size - 1, Math.max(0, x + i));
            sum += wts[j + 1] * wts[i + 1] * img[3 * (yy * size + xx) + k];
          }
        }
        out[3 * (y * size + x) + k] = sum / 16;
      }
    }
  }
  return out;
}

/** Colour jitter, blur, sharpen, noise and JPEG re-compression, in place where possible. */
export async function photometric(img: Float32Array, size: number, plan: AugmentPlan): Promise<Float32Array> {
  if (plan.brightness !== 1 || plan.contrast !== 1 || plan.saturation !== 1) {
    let mean = 0;
    for (let i = 0; i < img.length; i++) mean += img[i];
    mean /= img.length;
    for (let i = 0; i < img.length; i += 3) {
      const gray = 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
      for (let k = 0; k < 3; k++) {
        const saturated = gray + (img[i + k] - gray) * plan.saturation;
        img[i + k] = ((saturated - mean) * plan.contrast + mean) * plan.brightness;
      }
    }
  }
  if (plan.blur > 0 || plan.sharpen > 0) {
    const soft = blur3(img, size);
    for (let i = 0; i < img.length; i++) {
      img[i] += plan.blur * (soft[i] - img[i]) + plan.sharpen * (img[i] - soft[i]);
    }
  }
  if (plan.noise > 0) {
    const random = rng(plan.noiseSeed);
    for (let i = 0; i < img.length; i++) { // Box-Muller
      img[i] += plan.noise * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    }
  }
  for (let i = 0; i < img.length; i++) img[i] = Math.min(1, Math.max(0, img[i]));
  if (plan.jpegQuality > 0) {
    const data = Uint8Array.from(img, (x) => Math.round(x * 255));
    const again = await decodeRgb(
      await encodeRgb({ width: size, height: size, data }, "jpeg", plan.jpegQuality),
    );
    for (let i = 0; i < img.length; i++) img[i] = again.data[i] / 255;
  }
  return img;
}

/** HWC [0, 1] to CHW (x - mean) / std: the one and only normalisation. */
export function normalise(img: Float32Array, size: number, mean: readonly number[], std: readonly number[]) {
  const n = size * size, out = new Float32Array(3 * n);
  for (let k = 0; k < 3; k++) {
    const m = mean[k], s = 1 / std[k];
    for (let i = 0; i < n; i++) out[k * n + i] = (img[3 * i + k] - m) * s;
  }
  return out;
}
