// The standard layers, initialised as PyTorch initialises them.

import { ones, rand, randn, tensor, type TensorOptions, zeros } from "../create.ts";
import * as F from "../ops/mod.ts";
import type { Tensor } from "../tensor.ts";
import { Module } from "./module.ts";

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): PyTorch's default for Linear and Conv (kaiming_uniform, a = sqrt 5). */
function fanInUniform(shape: number[], fanIn: number, o: TensorOptions): Tensor {
  const b = 1 / Math.sqrt(fanIn);
  return rand(shape, { ...o, low: -b, high: b });
}

export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, ...o }: TensorOptions & { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.param("weight", fanInUniform([outFeatures, inFeatures], inFeatures, o));
    this.bias = bias ? this.param("bias", fanInUniform([outFeatures], inFeatures, o)) : null;
  }
  /** x [..., in] -> [..., out]. Leading dims fold into rows, so the weight gradient is one GEMM. */
  forward(x: Tensor): Tensor {
    const rows = x.ndim > 2 ? F.reshape(x, [-1, this.inFeatures]) : x;
    let y = F.matmul(rows, F.transpose(this.weight));
    if (this.bias) y = F.add(y, this.bias);
    return x.ndim > 2 ? F.reshape(y, [...x.shape.slice(0, -1), this.outFeatures]) : y;
  }
}

export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    inChannels: number,
    outChannels: number,
    kernel: F.Pair,
    readonly opts: F.Conv2dOptions & TensorOptions & { bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = typeof kernel === "number" ? [kernel, kernel] : kernel, g = opts.groups ?? 1;
    const fanIn = (inChannels / g) * kh * kw;
    const o = { device: opts.device, dtype: opts.dtype };
    this.weight = this.param("weight", fanInUniform([outChannels, inChannels / g, kh, kw], fanIn, o));
    this.bias = opts.bias ?? true ? this.param("bias", fanInUniform([outChannels], fanIn, o)) : null;
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, this.opts);
  }
}

export class BatchNorm2d extends Module {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  constructor(channels: number, readonly opts: { eps?: number; momentum?: number } & TensorOptions = {}) {
    super();
    const o = { device: opts.device, dtype: opts.dtype };
    this.weight = this.param("weight", ones([channels], o));
    this.bias = this.param("bias", zeros([channels], o));
    this.runningMean = this.buffer("running_mean", zeros([channels], o));
    this.runningVar = this.buffer("running_var", ones([channels], o));
    // PyTorch saves this counter; kept so its state dicts load strictly. Not used for momentum.
    this.buffer("num_batches_tracked", tensor([0], [], { device: opts.device, dtype: "i32" }));
  }
  /** `tail` fuses relu?(bn(x) + residual?) into the normalisation (one pass each way). */
  forward(x: Tensor, tail: { residual?: Tensor; relu?: boolean } = {}): Tensor {
    return F.batchNorm2d(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: this.training,
      ...this.opts,
      ...tail,
    });
  }
}

export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  readonly shape: number[];
  constructor(shape: number | number[], readonly eps = 1e-5, o: TensorOptions = {}) {
    super();
    this.shape = typeof shape === "number" ? [shape] : shape;
    this.weight = this.param("weight", ones(this.shape, o));
    this.bias = this.param("bias", zeros(this.shape, o));
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.shape, this.weight, this.bias, this.eps);
  }
}

export class Embedding extends Module {
  weight: Tensor;
  constructor(count: number, dim: number, o: TensorOptions = {}) {
    super();
    this.weight = this.param("weight", randn([count, dim], o));
  }
  forward(idx: Tensor): Tensor {
    return F.embedding(idx, this.weight);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

/** Any module with a one-tensor forward. */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}

/** Runs its layers in order; children are named "0", "1", ... as in PyTorch. */
export class Sequential extends Module {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers;
  }
  override children(): [string, Module][] {
    return this.layers.map((m, i) => [String(i), m]);
  }
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, m) => m.forward(h), x);
  }
}
