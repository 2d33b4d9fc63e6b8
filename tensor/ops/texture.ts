// Operands packed into pooled textures for the kernels that read texels (kernels/texture_pack.ts):
// one launch per operand, the texture pushed on a scratch list that the op releases once its
// launches are recorded (later commands may reuse it; nothing reads it after). Where the operand's
// rows already lie in its buffer as texel rows (a pitch of a multiple of 256 bytes), the buffer is
// copied into the texture instead: a memcpy on llvmpipe, where the pack kernel is load-bound.
// Rows too short for that pitch (the tiny decoder's 96 floats: 384 bytes) are copied F to a
// texture row (`fold`): row g of the stacked blocks lies at texel (c + (g % F) W, g / F).

import { shapeWords, viewWords } from "../../kernels/common.ts";
import { packTextureWGSL } from "../../kernels/texture_pack.ts";
import type { Dispatch, TextureCopy } from "../webgpu/runtime.ts";
import { gpu } from "../storage.ts";
import { numel } from "../shape.ts";
import type { Tensor } from "../tensor.ts";

/** An operand [batch..., rows, cols] read through `view` (batch dims) and `strides` (rows, cols). */
export interface TextureOperand {
  batch: number[];
  view: { offset: number; strides: number[] };
  rows: number;
  cols: number;
  strides: [number, number];
  /** texel rows (>= rows + pad[0]) and texels (>= (cols + pad[1]) / 4) of one batch's block */
  R: number;
  W: number;
  /** zero rows and columns before the operand's own */
  pad?: [number, number];
  /** batch blocks side by side per band of R rows (default 1: stacked) */
  P?: number;
  /** operand rows per texture row (default 1), for copies only: see `fold` */
  F?: number;
}

/** How many blocks W texels wide fit side by side in a texture. */
export const blocksPerBand = (W: number): number =>
  Math.max(1, Math.floor(gpu().device.limits.maxTextureDimension2D / W));

/** The texture's [width, height] in texels. */
export function textureSize({ batch, R, W, P = 1, F = 1 }: TextureOperand): [number, number] {
  const nb = numel(batch);
  return [Math.min(nb, P) * W * F, Math.ceil(nb / P) * R / F];
}

/** Whether the operand's texture fits the device's limit. */
export const textureFits = (o: TextureOperand): boolean =>
  Math.max(...textureSize(o)) <= gpu().device.limits.maxTextureDimension2D;

/**
 * The step that puts `x` into a texture as `o` describes, pushed on `scratch`: a copy where the
 * texture's rows are the buffer's (rows of 4 W floats, contiguous, of a multiple of 256 bytes,
 * blocks one after another, no padding), else the pack kernel.
 */
export function packTexture(x: Tensor, o: TextureOperand, scratch: GPUTexture[]): Dispatch {
  const texture = gpu().textures.acquire(...textureSize(o));
  scratch.push(texture);
  const nb = numel(o.batch), { buffer } = x.storage.binding, F = o.F ?? 1;
  if (copies(o, buffer.size)) {
    return copyStep({
      buffer,
      byteOffset: 4 * o.view.offset,
      bytesPerRow: 16 * o.W * F,
      texture,
      size: [o.W * F, nb * o.R / F],
    });
  }
  if (F !== 1) throw new Error("internal: a folded texture operand that does not copy");
  const [padR, padC] = o.pad ?? [0, 0];
  const aligned = o.strides[1] === 1 && [o.cols, padC, o.view.offset, o.strides[0], ...o.view.strides]
    .every((n) => n % 4 === 0);
  return {
    name: "pack_texture",
    code: packTextureWGSL(aligned),
    params: [
      nb,
      o.rows,
      o.cols,
      o.R,
      o.W,
      padR,
      padC,
      o.P ?? 1,
      ...shapeWords(o.batch),
      ...viewWords(o.view),
      ...o.strides,
    ],
    reads: [x.storage.binding],
    writes: [{ texture }],
    threads: nb * o.R * o.W,
  };
}

const copyStep = (copy: TextureCopy): Dispatch => ({
  name: "copy_to_texture",
  code: "",
  params: [],
  reads: [],
  writes: [{ texture: copy.texture }],
  copy,
});

/**
 * `o` with the fewest rows per texture row (1, 2, 4, ... up to `most`) that lets a copy make its
 * texture; `o` itself where none does (the pack kernel then makes it, a row per texture row).
 */
export function fold(o: TextureOperand, x: Tensor, most = 16): TextureOperand {
  for (let F = 1; F <= most; F *= 2) {
    const f = { ...o, F };
    if (copies(f, x.storage.binding.buffer.size) && textureFits(f)) return f;
  }
  return o;
}

/** Whether the texture `o` describes is its operand's buffer, F rows to a row (see packTexture). */
function copies(o: TextureOperand, bufferBytes: number): boolean {
  const [sr, sc] = o.strides, [padR, padC] = o.pad ?? [0, 0], F = o.F ?? 1;
  if (
    sc !== 1 || padR || padC || o.R !== o.rows || 4 * o.W !== sr || (F * sr * 4) % 256 || o.view.offset % 4 ||
    (numel(o.batch) * o.R) % F
  ) {
    return false;
  }
  let block = o.rows * sr; // each batch's block follows the last
  for (let d = o.batch.length - 1; d >= 0; d--) {
    if (o.batch[d] !== 1 && o.view.strides[d] !== block) return false;
    block *= o.batch[d];
  }
  return ((o.P ?? 1) === 1 || numel(o.batch) === 1) && 4 * (o.view.offset + block) <= bufferBytes;
}

/**
 * The rows of x [B, H, T, D] (D contiguous, offset and strides multiples of 4) as a texture pushed
 * on `scratch`, and the layout [f, sb, sh, st] that addresses it (kernels/attention_block.ts): the
 * buffer's lines of st floats from x's offset on, 2^f of them to a texture row, so that a texture
 * row is a multiple of 256 bytes and copies make it (a [B, T, H * D] projection's rows read in
 * place; the last texture row copied only as far as x's rows reach). Where a line holds no whole
 * row, x is packed instead, head after head, as a contiguous [B, H, T, D] (f = 0). Null where
 * neither fits the texture limit.
 */
export function rowsTexture(
  x: Tensor,
  scratch: GPUTexture[],
): { texture: GPUTexture; layout: number[] } | null {
  const [B, H, T, D] = x.shape, [sb, sh, st] = x.strides, max = gpu().device.limits.maxTextureDimension2D;
  const { buffer } = x.storage.binding, start = 4 * x.offset;
  // the floats from x's offset to the end of its last row, and whether every row stays in its line
  let floats = 0, inLines = x.offset % 4 === 0 && [sb, sh, st].every((s) => s % 4 === 0);
  for (let i = 0; i < B * H; i++) {
    const r = Math.floor(i / H) * sb + (i % H) * sh;
    floats = Math.max(floats, r + (T - 1) * st + D);
    inLines &&= (r % st) + D <= st;
  }
  const f = [0, 1, 2, 3, 4].find((f) => ((st << f) * 4) % 256 === 0) ?? -1, pitch = st << f; // floats
  const full = Math.floor(floats / pitch), rest = floats - full * pitch, height = full + (rest ? 1 : 0);
  if (inLines && f >= 0 && pitch / 4 <= max && height <= max && start + 4 * floats <= buffer.size) {
    const texture = gpu().textures.acquire(pitch / 4, height), bytesPerRow = 4 * pitch;
    scratch.push(texture);
    if (full) {
      gpu().run(copyStep({ buffer, byteOffset: start, bytesPerRow, texture, size: [pitch / 4, full] }));
    }
    if (rest) {
      const byteOffset = start + full * bytesPerRow;
      gpu().run(copyStep({ buffer, byteOffset, bytesPerRow, texture, size: [rest / 4, 1], row: full }));
    }
    return { texture, layout: [f, sb, sh, st] };
  }
  if (B * H * T > max || D / 4 > max) return null;
  const o: TextureOperand = {
    batch: [B, H],
    view: { offset: x.offset, strides: [sb, sh] },
    rows: T,
    cols: D,
    strides: [st, 1],
    R: T,
    W: D / 4,
  };
  gpu().run(packTexture(x, o, scratch));
  return { texture: scratch.at(-1)!, layout: [0, H * T * D, T * D, D] };
}
