// One entry per registered op: the cases its three checks run on. Shapes are deliberately odd
// (primes, size-1 dims, broadcasting on either side); tests/registry_test.ts fails when an op has
// no entry here.

import { F, manualSeed, type Tensor } from "../tensor/mod.ts";
import type { Case } from "./helpers/check.ts";

const x = (shape: number[], low?: number, high?: number) => ({ shape, low, high });
const pos = (shape: number[]) => x(shape, 0.5, 2);
const unary = (f: (t: Tensor) => Tensor, positive = false): Case[] => [
  { inputs: [positive ? pos([3, 1, 7]) : x([3, 1, 7])], fn: f },
  { inputs: [positive ? pos([2, 5]) : x([2, 5])], fn: f },
];
const binary = (f: (a: Tensor, b: Tensor) => Tensor, a = x, b = x): Case[] => [
  { inputs: [a([2, 5]), b([2, 5])], fn: f },
  { inputs: [a([3, 1, 5]), b([4, 1])], fn: f }, // both sides broadcast
  { inputs: [a([1]), b([2, 3])], fn: f }, // left side broadcast only
  { inputs: [a([2, 3, 4]), b([])], fn: f }, // scalar on the right
  { inputs: [a([2, 3, 4]), b([3, 4])], fn: f }, // a bias: the right side repeats every 12 elements
];
const reduce = (f: (t: Tensor, axes?: number | number[], keep?: boolean) => Tensor): Case[] => [
  // few outputs over a long reduction: the kernel splits each output's work, then reduces the parts
  { inputs: [x([700, 3])], fn: (t) => f(t, 0), contiguousOnly: true },
  { inputs: [x([3, 4, 5])], fn: (t) => f(t, 1) },
  { inputs: [x([3, 4, 5])], fn: (t) => f(t, [0, 2], true) },
  { inputs: [x([2, 1, 6])], fn: (t) => f(t) },
  { inputs: [x([5, 3])], fn: (t) => f(t, -1, true) },
  // permuted views, walked largest stride first: a run of 60 per output, and all of it as one run
  { inputs: [x([2, 3, 4, 5])], fn: (t) => f(F.permute(t, [0, 3, 2, 1]), [1, 2, 3]) },
  { inputs: [x([2, 3, 4, 5])], fn: (t) => f(F.permute(t, [2, 0, 3, 1])) },
];
const idx = (shape: number[], index: number[]) => ({ shape, index });

export const CASES: Record<string, Case[]> = {
  neg: unary(F.neg),
  exp: unary(F.exp),
  log: unary(F.log, true),
  sqrt: unary(F.sqrt, true),
  rsqrt: unary(F.rsqrt, true),
  abs: unary(F.abs),
  relu: unary(F.relu),
  tanh: unary(F.tanh),
  sigmoid: unary(F.sigmoid),
  gelu: unary((t) => F.gelu(t, "tanh")),
  geluErf: unary((t) => F.gelu(t, "none")),

  add: binary(F.add),
  sub: binary(F.sub),
  mul: binary(F.mul),
  div: binary(F.div, x, pos),
  pow: [...binary(F.pow, pos, x), { inputs: [x([2, 3])], fn: (t) => F.pow(t, 3) }],
  maximum: binary(F.maximum),
  minimum: binary(F.minimum),
  where: [
    {
      inputs: [{ shape: [2, 1, 4], low: 0, high: 1, noGrad: true }, x([3, 4]), x([2, 3, 1])],
      fn: (c, a, b) => F.where(F.binary("gt", c, 0.5), a, b),
    },
  ],

  sum: reduce(F.sum),
  mean: reduce(F.mean),
  max: reduce(F.max),
  min: reduce(F.min),
  var: [...reduce((t, a, k) => F.variance(t, a, k)), {
    inputs: [x([4, 6])],
    fn: (t) => F.variance(t, 0, false, 0),
  }],
  logsumexp: reduce(F.logsumexp),

  matmul: [
    { inputs: [x([5, 7]), x([7, 3])], fn: F.matmul },
    { inputs: [x([2, 1, 4, 3]), x([5, 3, 6])], fn: F.matmul }, // broadcast batch dims
    { inputs: [x([7]), x([7, 3])], fn: F.matmul },
    { inputs: [x([4, 7]), x([7])], fn: F.matmul },
    { inputs: [x([3, 5]), x([3, 2])], fn: (a, b) => F.matmul(F.transpose(a), b) }, // A^T read in place
    // multiples of 4, so the vec4 variants apply: NN, NT (a Linear layer's W^T), TN, batched
    { inputs: [x([12, 8]), x([8, 16])], fn: F.matmul, contiguousOnly: true },
    { inputs: [x([9, 8]), x([12, 8])], fn: (a, b) => F.matmul(a, F.transpose(b)), contiguousOnly: true },
    { inputs: [x([8, 12]), x([8, 4])], fn: (a, b) => F.matmul(F.transpose(a), b), contiguousOnly: true },
    { inputs: [x([2, 5, 8]), x([2, 8, 4])], fn: F.matmul, contiguousOnly: true },
  ],

  reshape: [
    { inputs: [x([3, 4, 2])], fn: (t) => F.reshape(t, [4, -1]) },
    // strided: one part of a packed [B, T, 3, H, D] projection split into heads (a view), a
    // size-1 dim dropped from a slice (a view), and a transpose flattened (a copy)
    { inputs: [x([2, 3, 12])], fn: (t) => F.reshape(F.slice(t, 2, 4, 8), [2, 3, 2, 2]) },
    { inputs: [x([3, 3, 2])], fn: (t) => F.reshape(F.slice(t, 1, 1, 2), [1, 3, 2, 1]) },
    { inputs: [x([3, 4])], fn: (t) => F.reshape(F.transpose(t), [2, 6]) },
  ],
  permute: [{ inputs: [x([2, 3, 4])], fn: (t) => F.permute(t, [2, 0, 1]) }],
  expand: [{ inputs: [x([3, 1])], fn: (t) => F.expand(t, [2, 3, 4]) }],
  slice: [
    { inputs: [x([5, 4])], fn: (t) => F.slice(t, 0, 1, 4) },
    { inputs: [x([3, 6])], fn: (t) => F.slice(t, -1, -4, -1) },
    // the whole axis: its gradient is a pad by nothing
    { inputs: [x([3, 4])], fn: (t) => F.slice(F.permute(t, [1, 0]), 0, 0, 4) },
    // sibling slices: their gradients are added into one buffer in place (tensor.ts, Part)
    { inputs: [x([2, 6])], fn: (t) => F.mul(F.slice(t, 1, 0, 3), F.slice(t, 1, 3, 6)) },
    // overlapping slices, and a broadcast gradient (sum's) that the engine must not write into
    { inputs: [x([4, 3])], fn: (t) => F.add(F.mul(F.slice(t, 0, 0, 3), F.slice(t, 0, 1, 4)), F.sum(t)) },
    { inputs: [x([4, 3])], fn: (t) => F.add(F.sum(t), F.mul(F.slice(t, 0, 0, 3), F.slice(t, 0, 1, 4))) },
  ],
  pad: [
    { inputs: [x([2, 3])], fn: (t) => F.pad(t, [[1, 0], [2, 3]], 0.5) },
    { inputs: [x([2, 3])], fn: (t) => F.pad(t, [[0, 0], [0, 0]], 0.5) },
  ],
  concat: [{ inputs: [x([2, 3]), x([2, 1]), x([2, 4])], fn: (a, b, c) => F.concat([a, b, c], 1) }],
  stack: [{ inputs: [x([3, 2]), x([3, 2])], fn: (a, b) => F.stack([a, b], 1) }],
  contiguous: [{ inputs: [x([3, 5])], fn: (t) => F.contiguous(F.transpose(t)) }],

  softmax: [{ inputs: [x([3, 7])], fn: (t) => F.softmax(t) }, {
    inputs: [x([2, 5, 3])],
    fn: (t) => F.softmax(t, 1),
  }],
  logSoftmax: [{ inputs: [x([3, 7])], fn: (t) => F.logSoftmax(t) }, {
    inputs: [x([2, 5, 3])],
    fn: (t) => F.logSoftmax(t, 0),
  }],
  layerNorm: [
    { inputs: [x([4, 7]), x([7]), x([7])], fn: (t, w, b) => F.layerNorm(t, [7], w, b) },
    { inputs: [x([2, 3, 5])], fn: (t) => F.layerNorm(t, [3, 5]) },
    { inputs: [x([3, 2, 3]), x([2, 3]), x([2, 3])], fn: (t, w, b) => F.layerNorm(t, [2, 3], w, b) },
  ],

  conv2d: [
    {
      inputs: [x([2, 4, 7, 6]), x([6, 2, 3, 3]), x([6])],
      fn: (t, w, b) => F.conv2d(t, w, b, { stride: [2, 1], padding: [1, 2], dilation: [1, 2], groups: 2 }),
    },
    // 1x1: a matmul, transposed where H * W is not a multiple of 4 (tensor/ops/conv.ts, pointwise)
    { inputs: [x([1, 3, 5, 5]), x([4, 3, 1, 1])], fn: (t, w) => F.conv2d(t, w) },
    { inputs: [x([2, 3, 4, 5]), x([6, 3, 1, 1])], fn: (t, w) => F.conv2d(t, w) },
    {
      inputs: [x([2, 2, 6, 5]), x([3, 2, 3, 2])],
      fn: (t, w) => F.conv2d(t, w, null, { stride: 2, padding: 1 }),
    },
  ],
  batchNorm2d: [
    {
      inputs: [x([3, 4, 3, 2]), x([4]), x([4])],
      fn: (t, w, b) => F.batchNorm2d(t, null, null, w, b, { training: true }),
    },
    {
      // planes of whole vec4s: the kernels' vector form
      inputs: [x([2, 3, 4, 8]), x([3]), x([3])],
      fn: (t, w, b) => F.batchNorm2d(t, null, null, w, b, { training: true }),
    },
    {
      // a ResNet block's fused tail, relu(bn(x) + r): gradients reach x, w, b and r
      inputs: [x([2, 3, 4, 4]), x([3]), x([3]), x([2, 3, 4, 4])],
      fn: (t, w, b, r) => F.batchNorm2d(t, null, null, w, b, { training: true, residual: r, relu: true }),
    },
    {
      inputs: [
        x([2, 3, 2, 3]),
        { shape: [3], low: 0.5, high: 2, noGrad: true },
        { shape: [3], noGrad: true },
        pos([3]),
        x([3]),
      ],
      fn: (t, rv, rm, w, b) => F.batchNorm2d(t, rm, rv, w, b, { training: false, relu: true }),
    },
    {
      // running statistics are buffers: no gradient flows into them
      inputs: [
        x([2, 3, 2, 2]),
        { shape: [3], low: 0.5, high: 2, noGrad: true },
        { shape: [3], noGrad: true },
        pos([3]),
      ],
      fn: (t, rv, rm, w) => F.batchNorm2d(t, rm, rv, w, null, { training: false }),
    },
  ],
  maxPool2d: [
    { inputs: [x([2, 3, 7, 6])], fn: (t) => F.maxPool2d(t, 3, { stride: 2, padding: 1 }) },
    { inputs: [x([1, 2, 7, 7])], fn: (t) => F.maxPool2d(t, 2, { stride: 1, dilation: 2 }) },
  ],
  avgPool2d: [
    // 72 taps: more than the kernels unroll (kernels/pool.ts), so the looping form
    { inputs: [x([1, 2, 10, 9])], fn: (t) => F.avgPool2d(t, [9, 8], { stride: 1 }) },
    { inputs: [x([2, 3, 7, 6])], fn: (t) => F.avgPool2d(t, 3, { stride: 2, padding: 1 }) },
    {
      inputs: [x([2, 3, 7, 6])],
      fn: (t) => F.avgPool2d(t, [3, 2], { stride: [2, 1], padding: 1, countIncludePad: false }),
    },
  ],
  adaptiveAvgPool2d: [
    { inputs: [x([2, 3, 7, 6])], fn: (t) => F.adaptiveAvgPool2d(t, [3, 4]) },
    { inputs: [x([1, 4, 5, 5])], fn: (t) => F.adaptiveAvgPool2d(t, 1) },
  ],
  embedding: [{
    inputs: [idx([2, 5], [3, 0, 6, 3, 3, 1, 0, 6, 2, 3]), x([7, 4])],
    fn: (i, t) => F.embedding(i, t),
  }],
  pick: [{ inputs: [x([5, 6]), idx([5], [2, 0, -100, 5, 2])], fn: (t, i) => F.pick(t, i) }],
  dropout: [{
    inputs: [x([4, 6])],
    fn: (t) => {
      manualSeed(7); // the same mask for every evaluation
      return F.dropout(t, 0.3);
    },
  }],
  attention: [
    {
      inputs: [x([2, 2, 5, 4]), x([2, 2, 5, 4]), x([2, 2, 5, 4])],
      fn: (q, k, v) => F.attention(q, k, v, { causal: true }),
      contiguousOnly: true,
    },
    {
      inputs: [x([2, 3, 3, 8]), x([2, 3, 6, 8]), x([2, 3, 6, 8])],
      fn: (q, k, v) => F.attention(q, k, v),
      contiguousOnly: true,
    },
    {
      // key padding (batch 1 hides its last two keys) with causal decoding of 2 new queries over 5 keys
      inputs: [x([2, 1, 2, 4]), x([2, 1, 5, 4]), x([2, 1, 5, 4]), {
        shape: [2, 5],
        noGrad: true,
        low: 0,
        high: 1,
      }],
      fn: (q, k, v, u) => F.attention(q, k, v, { causal: true, keyPadding: F.binary("gt", u, 0.7) }),
      contiguousOnly: true,
    },
    {
      // K and V read in place from a cache of capacity 7 holding 4 rows
      inputs: [x([1, 2, 1, 4]), x([1, 2, 7, 4]), x([1, 2, 7, 4])],
      fn: (q, k, v) => F.attention(q, F.slice(k, 2, 0, 4), F.slice(v, 2, 0, 4), { causal: true }),
      contiguousOnly: true,
    },
    {
      inputs: [x([1, 2, 3, 4]), x([1, 2, 3, 4]), x([1, 2, 3, 4])],
      fn: (q, k, v) => F.attention(q, k, v, { scale: 0.3 }),
    },
    {
      // heads as a projection gives them: [B, T, H, D] permuted, read and written in place; K and V
      // two slices of one [B, T, 2, H, D] buffer; the output merged back to [B, T, H * D]
      inputs: [x([2, 3, 2, 4]), x([2, 5, 2, 2, 4])],
      fn: (q, kv) => {
        const heads = (t: Tensor) => F.permute(t, [0, 2, 1, 3]);
        const [k, v] = [0, 1].map((i) => heads(F.reshape(F.slice(kv, 2, i, i + 1), [2, 5, 2, 4])));
        const out = F.attention(heads(q), k, v, { causal: true });
        return F.reshape(F.permute(out, [0, 2, 1, 3]), [2, 3, 8]);
      },
      contiguousOnly: true,
    },
  ],
  crossEntropy: [
    { inputs: [x([2, 3, 5]), idx([2, 3], [1, 4, -100, 0, 2, 2])], fn: (l, t) => F.crossEntropy(l, t) },
    {
      inputs: [x([4, 6]), idx([4], [5, 0, 3, 7])],
      fn: (l, t) => F.crossEntropy(l, t, { labelSmoothing: 0.1, ignoreIndex: 7 }),
    },
    {
      inputs: [x([3, 4]), idx([3], [1, 0, 3])],
      fn: (l, t) => F.crossEntropy(l, t, { reduction: "sum", labelSmoothing: 0.2 }),
    },
    {
      inputs: [x([3, 4]), idx([3], [1, -100, 3])],
      fn: (l, t) => F.crossEntropy(l, t, { reduction: "none" }),
    },
    { // rows longer than ROW_PER_THREAD_MAX: the row-per-workgroup form
      inputs: [x([2, 2100], 0.5, 1.5), idx([2], [2099, 17])],
      fn: (l, t) => F.crossEntropy(l, t, { labelSmoothing: 0.1 }),
    },
  ],
};
