// Operands packed into pooled textures for the kernels that read texels (kernels/texture_pack.ts):
// one launch per operand, the texture pushed on a scratch list that the op releases once its
// launches are recorded (later commands may reuse it; nothing reads it after).

import { shapeWords, viewWords } from "../../kernels/common.ts";
import { packTextureWGSL } from "../../kernels/texture_pack.ts";
import type { Dispatch } from "../webgpu/runtime.ts";
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
}

/** How many blocks W texels wide fit side by side in a texture. */
export const blocksPerBand = (W: number): number =>
  Math.max(1, Math.floor(gpu().device.limits.maxTextureDimension2D / W));

/** The texture's [width, height] in texels. */
export function textureSize({ batch, R, W, P = 1 }: TextureOperand): [number, number] {
  const nb = numel(batch);
  return [Math.min(nb, P) * W, Math.ceil(nb / P) * R];
}

/** Whether the operand's texture fits the device's limit. */
export const textureFits = (o: TextureOperand): boolean =>
  Math.max(...textureSize(o)) <= gpu().device.limits.maxTextureDimension2D;

/** The launch that packs `x` as `o` describes into a texture pushed on `scratch`. */
export function packTexture(x: Tensor, o: TextureOperand, scratch: GPUTexture[]): Dispatch {
  const texture = gpu().textures.acquire(...textureSize(o));
  scratch.push(texture);
  const [padR, padC] = o.pad ?? [0, 0], nb = numel(o.batch);
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
