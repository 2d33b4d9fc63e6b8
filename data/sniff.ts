// Image type and dimensions from the first bytes. Servers lie in Content-Type, and a decompression bomb
// is a small file whose header promises billions of pixels: both are caught here, before any decoding.

export type ImageType = "jpeg" | "png" | "gif" | "tiff" | "webp";

export function sniffType(b: Uint8Array): ImageType | undefined {
  const at = (i: number, ...bytes: number[]) => bytes.every((x, k) => b[i + k] === x);
  if (at(0, 0xff, 0xd8, 0xff)) return "jpeg";
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "png";
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return "gif";
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return "tiff";
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return "webp";
  return undefined;
}

export interface Dimensions {
  width: number;
  height: number;
}

/** Width and height as the header declares them, or undefined if the header is unreadable. */
export function sniffDimensions(b: Uint8Array): Dimensions | undefined {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  try {
    switch (sniffType(b)) {
      case "png":
        return { width: view.getUint32(16), height: view.getUint32(20) };
      case "gif":
        return { width: view.getUint16(6, true), height: view.getUint16(8, true) };
      case "jpeg":
        return jpegDimensions(view);
      case "tiff":
        return tiffDimensions(view);
    }
  } catch {
    return undefined; // header runs past the end of the bytes
  }
  return undefined;
}

function jpegDimensions(view: DataView): Dimensions | undefined {
  let i = 2;
  while (i + 9 < view.byteLength) {
    if (view.getUint8(i) !== 0xff) return undefined;
    const marker = view.getUint8(i + 1);
    if (marker === 0xff) { // fill byte
      i++;
      continue;
    }
    // Start-of-frame markers C0..CF, except DHT (C4), JPG (C8) and DAC (CC), carry the size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: view.getUint16(i + 5), width: view.getUint16(i + 7) };
    }
    i += 2 + view.getUint16(i + 2);
  }
  return undefined;
}

function tiffDimensions(view: DataView): Dimensions | undefined {
  const le = view.getUint8(0) === 0x49;
  const ifd = view.getUint32(4, le);
  const count = view.getUint16(ifd, le);
  const dims: Partial<Dimensions> = {};
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + 12 * k;
    const tag = view.getUint16(entry, le), type = view.getUint16(entry + 2, le);
    const value = type === 3 ? view.getUint16(entry + 8, le) : view.getUint32(entry + 8, le);
    if (tag === 256) dims.width = value;
    if (tag === 257) dims.height = value;
  }
  return dims.width && dims.height ? dims as Dimensions : undefined;
}
