// Bench-only reference: TensorFlow.js's WebGPU backend (@tensorflow/tfjs-core and
// @tensorflow/tfjs-backend-webgpu 4.22.0, pinned in deno.json) timed in the same Deno process as our code, so
// bench/main.ts can print both and their ratio. Tests never import this file.
//
// Findings (Deno 2.9.6, Mesa llvmpipe):
// - tfjs-webgpu initialises under Deno with no shims: Deno has `navigator.gpu`, tfjs-core's environment
//   detection copes without `window`/`document`, and the backend registers itself on import. The one flag
//   set, WEBGPU_CPU_FORWARD=false, stops tfjs from running ops whose inputs are still on the host on its CPU
//   kernels, so every timed op runs on the GPU; enableProdMode() is tfjs's advice for speed.
// - tfjs asks for its own adapter and device (powerPreference "high-performance", as tensor/webgpu/runtime.ts
//   does), so it gets the same adapter as our runtime, "llvmpipe (LLVM 15.0.6, 256 bits)" here, on a
//   separate GPUDevice. initTfjs() reports it from that device's adapterInfo.
// - It works with DENO_WEBGPU_BACKEND unset, =vulkan (llvmpipe via lavapipe) and =gl (llvmpipe via GL,
//   slower, without "bgra8unorm-storage"). Set to an empty string, no adapter is found and initTfjs()
//   throws, as our own runtime finds none either.
// - tf.grads does not work: tfjs-core's Node entry registers no gradients (the tfjs union package does), so
//   backward passes call tfjs's backward kernels, or compose them from ops as its gradients would.
// - Its Conv2DBackpropFilter is a naive kernel: conv backward is some 50x slower than forward here.
//
// Timing: a warm-up call (which compiles the pipelines), then `reps` calls, each inside tf.tidy so the
// tensors it makes are freed, followed by a flush of tfjs's pending command encoder and
// queue.onSubmittedWorkDone(), so a time covers GPU completion without the cost of reading a result back.

import * as tf from "@tensorflow/tfjs-core";
import { medianMs } from "./timing.ts";
import "@tensorflow/tfjs-backend-webgpu";

export interface TfjsTiming {
  /** Median wall time per call, including GPU completion. */
  ms: number;
}

/** The parts of tfjs's WebGPUBackend (public in JS, untyped in tfjs-core) this harness relies on. */
interface WebGPUBackend {
  device: GPUDevice & { adapterInfo?: GPUAdapterInfo };
  queue: GPUQueue;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

function backend(): WebGPUBackend {
  if (tf.getBackend() !== "webgpu") throw new Error("tfjs: call initTfjs() first");
  return tf.backend() as unknown as WebGPUBackend;
}

/** Sets tfjs's webgpu backend and returns a description of the adapter it got. */
export async function initTfjs(): Promise<string> {
  if (tf.getBackend() !== "webgpu") {
    tf.enableProdMode();
    tf.env().set("WEBGPU_CPU_FORWARD", false);
    if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs: the webgpu backend did not initialise");
  }
  const info = backend().device.adapterInfo;
  return info
    ? `${info.description || info.device || info.vendor}${info.isFallbackAdapter ? " (fallback)" : ""}`
    : "unknown adapter";
}

/** Submits what tfjs has recorded and waits for the GPU to finish it. */
async function sync(): Promise<void> {
  const be = backend();
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.submitQueue();
  await be.queue.onSubmittedWorkDone();
}

function time(fn: () => unknown, reps = 5): Promise<TfjsTiming> {
  // returning nothing, so tidy frees the result too
  return medianMs(() => tf.tidy(() => void fn()), sync, reps).then((ms) => ({ ms }));
}

/** Runs `fn` with the inputs from `make`, freeing them afterwards. */
async function withInputs<T extends tf.Tensor[] | []>(
  make: () => T,
  fn: (...t: T) => Promise<TfjsTiming>,
): Promise<TfjsTiming> {
  const inputs = make();
  try {
    await sync();
    return await fn(...inputs);
  } finally {
    tf.dispose(inputs);
  }
}

/** [batch,] m x k times k x n; batch 1 times a plain 2-D product. */
export function tfjsMatmul(m: number, k: number, n: number, batch = 1, reps = 5): Promise<TfjsTiming> {
  const lead = batch === 1 ? [] : [batch];
  return withInputs(
    () => [tf.randomNormal([...lead, m, k]), tf.randomNormal([...lead, k, n])],
    (a, b) => time(() => tf.matMul(a, b), reps),
  );
}

function convShapes(
  n: number,
  cin: number,
  h: number,
  w: number,
  cout: number,
  k: number,
  s: number,
  p: number,
) {
  const ho = Math.floor((h + 2 * p - k) / s) + 1, wo = Math.floor((w + 2 * p - k) / s) + 1;
  return { x: [n, h, w, cin] as const, w: [k, k, cin, cout] as const, y: [n, ho, wo, cout] as const };
}

/**
 * Our conv2d's NCHW problem (x [n, cin, h, w], weight [cout, cin, k, k]) timed in tfjs's native layout,
 * NHWC input and HWIO filter, as a tfjs model would run it; no transposes are timed.
 */
export function tfjsConv2d(
  n: number,
  cin: number,
  h: number,
  w: number,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  reps = 5,
): Promise<TfjsTiming> {
  const sh = convShapes(n, cin, h, w, cout, k, stride, pad);
  return withInputs(
    () => [tf.randomNormal<tf.Rank.R4>([...sh.x]), tf.randomNormal<tf.Rank.R4>([...sh.w])],
    (x, f) => time(() => tf.conv2d(x, f, stride, pad), reps),
  );
}

/**
 * The backward pass of tfjsConv2d alone (NHWC, as there): given dy, the input gradient
 * (Conv2DBackpropInput, via conv2dTranspose) and the weight gradient (Conv2DBackpropFilter), the two
 * kernels tf.grads would run; the forward pass is not timed.
 */
export function tfjsConv2dBackward(
  n: number,
  cin: number,
  h: number,
  w: number,
  cout: number,
  k: number,
  stride: number,
  pad: number,
  reps = 5,
): Promise<TfjsTiming> {
  const sh = convShapes(n, cin, h, w, cout, k, stride, pad);
  return withInputs(
    () => [
      tf.randomNormal<tf.Rank.R4>([...sh.x]),
      tf.randomNormal<tf.Rank.R4>([...sh.w]),
      tf.randomNormal<tf.Rank.R4>([...sh.y]),
    ],
    (x, f, dy) => time(() => conv2dGrads(x, f, dy, stride, pad), reps),
  );
}

/** [dx, dw] of tf.conv2d(x, f, stride, pad) for output gradient dy. */
export function conv2dGrads(x: tf.Tensor4D, f: tf.Tensor4D, dy: tf.Tensor4D, stride: number, pad: number) {
  const dx = tf.conv2dTranspose(dy, f, x.shape, stride, pad);
  const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
    strides: [stride, stride],
    pad,
    dataFormat: "NHWC",
    filterShape: f.shape,
  }) as tf.Tensor4D;
  return [dx, dw];
}

/**
 * model/attention.ts's math from tfjs ops: softmax(q / sqrt(d) k^T + bias) v for q [batch, heads, tq, d] and
 * k, v [batch, heads, tk, d], where the causal bias (null without `causal`) is -1e9 where key j > tk - tq + i.
 * With `dout` it also returns [dq, dk, dv], composed as tfjs's own gradients of BatchMatMul, Softmax and Mul
 * compose them (tf.grads cannot be used: tfjs-core's Node entry registers no gradients, and its
 * register_all_gradients.js has extensionless ESM imports that Deno, like Node, will not load).
 */
export function attentionGrads(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  bias: tf.Tensor | null,
  dout?: tf.Tensor,
): tf.Tensor[] {
  const c = 1 / Math.sqrt(q.shape[q.rank - 1]), qs = tf.mul(q, c);
  const scores = tf.matMul(qs, k, false, true);
  const p = tf.softmax(bias ? tf.add(scores, bias) : scores);
  const out = tf.matMul(p, v);
  if (!dout) return [out];
  const dp = tf.matMul(dout, v, false, true), dv = tf.matMul(p, dout, true, false);
  const dpp = tf.mul(dp, p);
  const ds = tf.sub(dpp, tf.mul(tf.sum(dpp, -1, true), p));
  return [tf.mul(tf.matMul(ds, k), c), tf.matMul(ds, qs, true, false), dv];
}

/** The additive causal mask of attentionGrads, [tq, tk]. */
export function causalBias(tq: number, tk: number): tf.Tensor2D {
  const b = new Float32Array(tq * tk), shift = tk - tq;
  for (let i = 0; i < tq; i++) for (let j = i + shift + 1; j < tk; j++) b[i * tk + j] = -1e9;
  return tf.tensor2d(b, [tq, tk]);
}

async function attention(
  batch: number,
  heads: number,
  tq: number,
  tk: number,
  d: number,
  causal: boolean,
  reps: number,
  backward: boolean,
): Promise<TfjsTiming> {
  return await withInputs(
    () => [
      tf.randomNormal([batch, heads, tq, d]),
      tf.randomNormal([batch, heads, tk, d]),
      tf.randomNormal([batch, heads, tk, d]),
      tf.randomNormal([batch, heads, tq, d]),
      causal ? causalBias(tq, tk) : tf.zeros([0]), // built once, untimed
    ],
    (q, k, v, dout, bias) =>
      time(() => attentionGrads(q, k, v, causal ? bias : null, backward ? dout : undefined), reps),
  );
}

/** Attention forward (see attentionGrads). */
export function tfjsAttention(
  batch: number,
  heads: number,
  tq: number,
  tk: number,
  d: number,
  causal: boolean,
  reps = 5,
): Promise<TfjsTiming> {
  return attention(batch, heads, tq, tk, d, causal, reps, false);
}

/** Attention forward and backward together: dq, dk and dv for a given output gradient (see attentionGrads). */
export function tfjsAttentionBackward(
  batch: number,
  heads: number,
  tq: number,
  tk: number,
  d: number,
  causal: boolean,
  reps = 5,
): Promise<TfjsTiming> {
  return attention(batch, heads, tq, tk, d, causal, reps, true);
}
