// Image decoding with imagescript's WebAssembly codecs, called directly: ImageScript's own decode()
// instantiates a fresh wasm module per call and converts JPEG to RGBA a pixel at a time, which together
// cost more than the decode itself. JPEG also decodes at 1/2, 1/4 or 1/8 scale when we only need a small
// image, which is most of the speed of the loader.
import { GIF, Image } from "imagescript";
// @ts-types="./codecs_wasm.d.ts"
import jpegWasm from "imagescript/wasm/node/jpeg.js";
// @ts-types="./codecs_wasm.d.ts"
import pngWasm from "imagescript/wasm/node/png.js";
// @ts-types="./codecs_wasm.d.ts"
import tiffWasm from "imagescript/wasm/node/tiff.js";
import { sniffType } from "./sniff.ts";

/** Interleaved 8-bit RGB. */
export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

type Codec = Awaited<ReturnType<typeof jpegWasm.init>>;
const instances = new Map<string, Promise<Codec>>();
const codec = (name: string, lib: typeof jpegWasm) => {
  if (!instances.has(name)) instances.set(name, lib.init());
  return instances.get(name)!;
};

/** Decode to RGB. For JPEG, `atLeast` lets the decoder scale down while keeping both sides at least that. */
export async function decodeRgb(
  bytes: Uint8Array,
  atLeast?: { width: number; height: number },
): Promise<Rgb> {
  switch (sniffType(bytes)) {
    case "jpeg": {
      const f = (await codec("jpeg", jpegWasm)).decode(bytes, atLeast?.width, atLeast?.height);
      const channels = f.format === 0 ? 1 : f.format === 1 ? 3 : 4;
      return toRgb(f.width, f.height, f.buffer, channels, f.format === 2 ? "cmyk" : "plain");
    }
    case "png": {
      const f = (await codec("png", pngWasm)).decode(bytes);
      return toRgb(f.width, f.height, f.framebuffer ?? f.buffer, 4, "plain");
    }
    case "tiff": {
      const f = (await codec("tiff", tiffWasm)).decode(bytes);
      return toRgb(f.width, f.height, f.buffer, 4, "plain");
    }
    case "gif": {
      const frame = (await GIF.decode(bytes, true))[0];
      return toRgb(frame.width, frame.height, frame.bitmap, 4, "plain");
    }
    case "webp":
      throw new Error("WebP is not supported by the decoder");
    default:
      throw new Error("not a known image format");
  }
}

/** Gray, RGB, RGBA (composited over white: transparent pixels often hold black) or inverted CMYK. */
function toRgb(width: number, height: number, src: ArrayLike<number>, channels: number, kind: string): Rgb {
  const n = width * height, data = new Uint8Array(3 * n);
  if (src.length < channels * n) {
    throw new Error(`decoder returned ${src.length} bytes for ${width}x${height}`);
  }
  for (let i = 0; i < n; i++) {
    if (channels === 1) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = src[i];
    else if (channels === 3) { for (let c = 0; c < 3; c++) data[3 * i + c] = src[3 * i + c]; }
    else if (kind === "cmyk") { // Adobe stores CMYK inverted
      const k = src[4 * i + 3];
      for (let c = 0; c < 3; c++) data[3 * i + c] = (src[4 * i + c] * k) / 255;
    } else {
      const a = src[4 * i + 3] / 255;
      for (let c = 0; c < 3; c++) data[3 * i + c] = src[4 * i + c] * a + 255 * (1 - a);
    }
  }
  return { width, height, data };
}

/** Encode RGB as JPEG (native codec) or PNG. */
export async function encodeRgb(
  rgb: Rgb,
  format: "jpeg" | "png",
  quality = 90,
): Promise<Uint8Array<ArrayBuffer>> {
  const image = new Image(rgb.width, rgb.height);
  const out = image.bitmap, n = rgb.width * rgb.height;
  for (let i = 0; i < n; i++) {
    out[4 * i] = rgb.data[3 * i];
    out[4 * i + 1] = rgb.data[3 * i + 1];
    out[4 * i + 2] = rgb.data[3 * i + 2];
    out[4 * i + 3] = 255;
  }
  const q = quality as Parameters<Image["encodeJPEG"]>[0];
  const bytes = format === "jpeg" ? await image.encodeJPEG(q) : await image.encode(1);
  return new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
}
