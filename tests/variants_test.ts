// Every kernel variant of an op gives the CPU reference's results, not only the one the tuner picks.

import assert from "node:assert";
import { device, F, full, noGrad, type Tensor, tensor } from "../tensor/mod.ts";
import { forceVariant, VARIANTS } from "../tensor/webgpu/variants.ts";
import { type Case, fewCases, relError, run, sampleValues, weightsFor } from "./helpers/check.ts";
import { CASES } from "./op_cases.ts";

// Shapes that cross several workgroup tiles and k slabs with ragged edges (the op cases are smaller
// than one 128 x 128 tile): matmul variants run these too, contiguous and strided. The last five
// are multiples of 4, so the vec4 variants take them (NN, NT, TN), but not of their blocks.
const x = (shape: number[]) => ({ shape });
const TILE_CASES: Case[] = [
  { inputs: [x([2, 133, 45]), x([2, 45, 141])], fn: F.matmul },
  { inputs: [x([67, 40]), x([150, 40])], fn: (a, b) => F.matmul(a, F.transpose(b)) },
  { inputs: [x([2, 132, 44]), x([2, 44, 140])], fn: F.matmul },
  { inputs: [x([68, 40]), x([148, 40])], fn: (a, b) => F.matmul(a, F.transpose(b)) },
  { inputs: [x([44, 136]), x([44, 140])], fn: (a, b) => F.matmul(F.transpose(a), b) },
  // k long enough for the split-K variants (k >= 128 per split), cut into runs that end unevenly
  { inputs: [x([1040, 44]), x([1040, 140])], fn: (a, b) => F.matmul(F.transpose(a), b) },
  { inputs: [x([68, 1040]), x([1040, 148])], fn: F.matmul },
  // rows of 64 and 128 floats: the texture variants copy such operands rather than pack them
  { inputs: [x([2, 36, 64]), x([2, 64, 128])], fn: F.matmul },
  // rows of 96, 160 and 24 floats: copied 2 (A, B), 2 and 8 (A) rows to a texture row
  { inputs: [x([3, 40, 96]), x([3, 96, 160])], fn: F.matmul },
  { inputs: [x([2, 16, 24]), x([2, 24, 96])], fn: F.matmul },
];

// conv2d's row-tiled kernel needs channel counts that are multiples of 4 (the op cases have
// none): forward and input gradient, with groups, padding, strides, dilation, and rows longer
// than one chunk with a ragged end.
const ROWS_CASES: Case[] = [
  {
    inputs: [x([2, 8, 9, 11]), x([8, 4, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { padding: 1, groups: 2 }),
  },
  {
    inputs: [x([1, 4, 10, 19]), x([12, 4, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: 1 }),
  },
  {
    inputs: [x([1, 4, 12, 13]), x([8, 4, 5, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { dilation: [2, 1], padding: [3, 0] }),
  },
  { inputs: [x([2, 8, 5, 30]), x([20, 8, 3, 3])], fn: (t, w) => F.conv2d(t, w, null, { padding: 1 }) },
  // strided input gradients run on dy with zeros inserted: uneven strides with dilation, a 1x1,
  // and the encoder's own 3x3 stride 2
  {
    inputs: [x([2, 4, 9, 10]), x([8, 4, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: [2, 3], padding: [1, 2], dilation: [1, 2] }),
  },
  { inputs: [x([1, 4, 7, 7]), x([8, 4, 1, 1])], fn: (t, w) => F.conv2d(t, w, null, { stride: 2 }) },
  {
    inputs: [x([2, 4, 8, 8]), x([8, 4, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: 1 }),
  },
  // grouped and strided: dy with zeros inserted, whose rows (8) the planes form could take
  {
    inputs: [x([2, 8, 8, 8]), x([8, 4, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: 1, groups: 2 }),
  },
];
// conv2d's workgroup-tiled kernels (64 or 128 rows of C by 64 or 128 columns, k slabs of 8 or 16):
// each product crosses a tile edge in M and N somewhere, with k not a multiple of the slab, image
// boundaries inside a thread's 4 columns, and weight-gradient split-K slices left empty.
//   forward M x N x K: 70 x 180 x 27 (groups 2), 136 x 49 x 30, 9 x 30 x 630
//   input:             3 x 180 x 630,            5 x 156 x 816, 70 x 30 x 81
//   weight:            70 x 27 x 180,            136 x 30 x 49, 9 x 630 x 30
const TILED_CASES: Case[] = [
  {
    inputs: [x([2, 6, 9, 10]), x([140, 3, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { padding: 1, groups: 2 }),
  },
  {
    inputs: [x([1, 5, 13, 12]), x([136, 5, 3, 2])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: [1, 2], dilation: [1, 2] }),
  },
  { inputs: [x([1, 70, 6, 5]), x([9, 70, 3, 3])], fn: (t, w) => F.conv2d(t, w, null, { padding: 1 }) },
];
// Attention with several row blocks per head and ragged ends: causal self-attention, causal with
// fewer keys than queries (the first queries see nothing), and padded cross-attention.
const ATTENTION_CASES: Case[] = [
  {
    inputs: [x([2, 2, 11, 12]), x([2, 2, 11, 12]), x([2, 2, 11, 12])],
    fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
    contiguousOnly: true,
  },
  {
    inputs: [x([1, 3, 7, 8]), x([1, 3, 5, 8]), x([1, 3, 5, 8])],
    fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
    contiguousOnly: true,
  },
  {
    // fixed padding: a random one that left a batch a single visible key made dK exactly 0, and
    // the test compared f32 rounding noise against that
    inputs: [x([2, 2, 9, 8]), x([2, 2, 6, 8]), x([2, 2, 6, 8])],
    fn: (q, k, v) =>
      F.attention(q, k, v, {
        keyPadding: tensor([0, 1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1], [2, 6], {
          device: q.device,
          dtype: q.dtype,
        }),
      }),
    contiguousOnly: true,
  },
  {
    // [B, T, H, D] heads permuted (vec4-aligned strides), several row blocks, causal; in the
    // texture form, lines of 24 floats copied 8 to a texture row
    inputs: [x([2, 11, 3, 8]), x([2, 9, 3, 8]), x([2, 9, 3, 8])],
    fn: (q, k, v) => {
      const heads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
      return F.permute(F.attention(heads(q), heads(k), heads(v), { causal: true }), [0, 2, 1, 3]);
    },
    contiguousOnly: true,
  },
  {
    // [B, T, H, D] heads permuted with rows 64 floats apart: the texture form copies the buffer
    // as it is (tensor/ops/texture.ts, rowsTexture), each head 4 texels to the right of the last
    inputs: [x([2, 10, 4, 16]), x([2, 9, 4, 16]), x([2, 9, 4, 16])],
    fn: (q, k, v) => {
      const heads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
      return F.permute(F.attention(heads(q), heads(k), heads(v), { causal: true }), [0, 2, 1, 3]);
    },
    contiguousOnly: true,
  },
  {
    // keys and values as the model's cross-attention makes them, views of one [B, T, 2, H, D]
    // projection: lines of 48 floats, copied 4 to a texture row, v's last row ending the buffer
    inputs: [x([2, 11, 3, 8]), x([2, 9, 2, 3, 8])],
    fn: (q, kv) => {
      const heads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
      const part = (i: number) => heads(F.reshape(F.slice(kv, 2, i, i + 1), [2, 9, 3, 8]));
      return F.permute(F.attention(heads(q), part(0), part(1)), [0, 2, 1, 3]);
    },
    contiguousOnly: true,
  },
];
// The workgroup-tiled kernels own 64 (tiled32) or 32 (tiled16s2) rows and walk tiles of 32 or 16:
// several of each with ragged ends.
const ATTENTION_TILE_CASES: Case[] = [
  {
    // causal with Tk < Tq: the first 25 queries see nothing, and the key blocks skip whole query tiles
    inputs: [x([1, 2, 70, 8]), x([1, 2, 45, 8]), x([1, 2, 45, 8])],
    fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
    contiguousOnly: true,
  },
  {
    // causal self-attention (the diagonal crosses tiles), D = 32
    inputs: [x([1, 1, 70, 32]), x([1, 1, 70, 32]), x([1, 1, 70, 32])],
    fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
    contiguousOnly: true,
  },
  {
    // padding that hides whole key tiles: batch 0 keys 0-31 and 40, batch 1 all but the last key
    inputs: [x([2, 1, 20, 8]), x([2, 1, 50, 8]), x([2, 1, 50, 8])],
    fn: (q, k, v) => {
      const hide = [...Array(100).keys()].map((i) => (i < 50 ? i < 32 || i === 40 : i < 99) ? 1 : 0);
      return F.attention(q, k, v, {
        keyPadding: tensor(hide, [2, 50], { device: q.device, dtype: q.dtype }),
      });
    },
    contiguousOnly: true,
  },
  {
    // [B, T, H, D] heads permuted in place, causal, several tiles
    inputs: [x([2, 40, 2, 16]), x([2, 35, 2, 16]), x([2, 35, 2, 16])],
    fn: (q, k, v) => {
      const heads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
      return F.permute(F.attention(heads(q), heads(k), heads(v), { causal: true }), [0, 2, 1, 3]);
    },
    contiguousOnly: true,
  },
  {
    // D = 64: tiled32's tiles fill the 16 KiB of workgroup memory exactly. K and V rows 65 floats
    // apart, read in place: the blocked kernels' vec4 loads rule them out (their D = 64 unrolled
    // code takes tens of seconds to compile on llvmpipe)
    inputs: [x([1, 1, 36, 64]), x([1, 1, 40, 65]), x([1, 1, 40, 65])],
    fn: (q, k, v) => F.attention(q, F.slice(k, 3, 1, 65), F.slice(v, 3, 1, 65)),
    contiguousOnly: true,
  },
  {
    // D = 6: scalar columns (no vec4s), causal with more keys than queries
    inputs: [x([1, 2, 33, 6]), x([1, 2, 37, 6]), x([1, 2, 37, 6])],
    fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
    contiguousOnly: true,
  },
];
// conv2d's weight-gradient row kernel needs output rows of a multiple of 4: with stride, dilation,
// groups, channel counts that are not multiples of its blocks, and fewer images than splits.
const WEIGHT_ROWS_CASES: Case[] = [
  { inputs: [x([2, 4, 6, 8]), x([6, 4, 3, 3])], fn: (t, w) => F.conv2d(t, w, null, { padding: 1 }) },
  {
    inputs: [x([3, 3, 9, 16]), x([5, 3, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: 1 }),
  },
  {
    inputs: [x([2, 4, 7, 12]), x([6, 2, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { dilation: 2, padding: 2, groups: 2 }),
  },
  { inputs: [x([1, 3, 5, 8]), x([4, 3, 1, 3])], fn: (t, w) => F.conv2d(t, w, null, { padding: [0, 1] }) },
  // stride 1 (the texture form) with groups and blocks of channels cut short
  {
    inputs: [x([3, 6, 5, 12]), x([18, 3, 3, 3])],
    fn: (t, w) => F.conv2d(t, w, null, { padding: 1, groups: 2 }),
  },
];
// Rows longer than a workgroup, with a ragged end, for the workgroup-per-row kernels.
const LONG_ROWS: Record<string, Case[]> = {
  softmax: [
    { inputs: [x([3, 150])], fn: (t) => F.softmax(t) },
    { inputs: [x([2, 131])], fn: (t) => F.logSoftmax(t) },
    ...CASES.logSoftmax,
  ],
  layerNorm: [{ inputs: [x([5, 130]), x([130]), x([130])], fn: (t, w, b) => F.layerNorm(t, [130], w, b) }],
};

// What the gpuOnly variants run on CPU adapters (`fewCases`): cases that cross their tiles in few
// pipelines. conv2d compiles per geometry, so one case crosses every edge the three above do, in
// each of its GEMMs (M x N x K; the tiles are 64 or 128 square, the slabs 8 or 16 deep):
//   forward 136 x 162 x 135, input 15 x 612 x 1224 (taps between strides), weight 136 x 135 x 162
//   (split-K slices left empty), with 81 output positions per image.
// Attention compiles per head size: the tile cases at D = 8 and 6, and permuted heads.
// Matmul compiles per operand layout, not per shape, so its variants run every case.
const CONV_FEW: Case = {
  inputs: [x([2, 30, 17, 18]), x([272, 15, 3, 3])],
  fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: [1, 2], dilation: [1, 2], groups: 2 }),
};
const attentionFew = [
  ATTENTION_TILE_CASES[0],
  ATTENTION_TILE_CASES[2],
  ATTENTION_TILE_CASES[5],
  ATTENTION_CASES[3],
];
const FEW: Record<string, Case[]> = {
  conv2d: [CONV_FEW],
  conv2d_weight: [CONV_FEW],
  attention: attentionFew,
  attention_dq: attentionFew,
  attention_dkv: attentionFew,
};

const EXTRA: Record<string, Case[]> = {
  ...LONG_ROWS,
  layerNorm_grad: LONG_ROWS.layerNorm,
  matmul: TILE_CASES,
  conv2d: [...ROWS_CASES, ...TILED_CASES],
  conv2d_weight: [...ROWS_CASES, ...WEIGHT_ROWS_CASES, ...TILED_CASES],
  attention: [...ATTENTION_CASES, ...ATTENTION_TILE_CASES],
  attention_dq: [...ATTENTION_CASES, ...ATTENTION_TILE_CASES],
  attention_dkv: [...ATTENTION_CASES, ...ATTENTION_TILE_CASES],
};

for (const [op, variants] of Object.entries(VARIANTS)) {
  for (const v of variants) {
    Deno.test({
      name: `${op} variant ${v.name}: WebGPU forward and backward match the CPU reference`,
      ignore: device() !== "webgpu",
    }, async () => {
      forceVariant(op, v.name);
      try {
        const cases = fewCases(v) && FEW[op]
          ? FEW[op]
          : [...(CASES[op] ?? CASES[op.split("_")[0]]), ...(EXTRA[op] ?? [])];
        for (const [k, c] of cases.entries()) {
          for (const strided of c.contiguousOnly ? [false] : [false, true]) {
            const values = await sampleValues(c.inputs), w = await weightsFor(c, values);
            const [cpu, gpu] = [
              await run(c, values, "cpu", strided, w),
              await run(c, values, "webgpu", strided, w),
            ];
            const at = `case ${k}${strided ? " (strided)" : ""}`;
            assert(relError(gpu.y, cpu.y) <= 1e-4, `${at}: forward error ${relError(gpu.y, cpu.y)}`);
            gpu.grads.forEach((g, i) =>
              g && assert(relError(g, cpu.grads[i]!) <= 1e-4, `${at}: gradient ${i}`)
            );
          }
        }
      } finally {
        forceVariant(op, null);
      }
    });
  }
}

// Split-K variants are ruled out for large outputs (their partial sums would be huge); the others
// must still serve them: a ResNet stem at batch 32 and 224 px writes 25.7M floats.
Deno.test({
  name: "conv2d with an output over 2^24 elements still finds a kernel",
  ignore: device() !== "webgpu",
}, async () => {
  const [H, W, C] = [1200, 1201, 12];
  const x = full([1, 1, H, W], 1), w = F.contiguous(F.expand(tensor([1, 2], [1, 1, 1, 2]), [C, 1, 1, 2]));
  const y = noGrad(() => F.conv2d(x, w, null));
  assert.deepStrictEqual(y.shape, [1, C, H, W - 1]);
  const v = await y.toArray() as Float32Array;
  assert.strictEqual(v.findIndex((e) => e !== 3), -1, "an element is not 1 * 1 + 1 * 2");
  for (const t of [x, w, y]) t.dispose();
});
