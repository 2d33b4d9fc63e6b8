// ResNet 18/34/50/101/152 exactly as torchvision builds them (and a ResNet-10: one basic block per
// stage, for CPU-sized presets) (v1.5: the stride sits on the 3x3 conv
// of a Bottleneck; downsample = 1x1 conv + BN), with torchvision's parameter and buffer names, so
// ImageNet state dicts load unchanged. `widths` builds narrower variants of the same graph (the
// test fixtures, CPU-sized presets); the defaults are torchvision's.

import { F, isGradEnabled, nn, type Tensor, type TensorOptions } from "../tensor/mod.ts";

export type Depth = 10 | 18 | 34 | 50 | 101 | 152;
export type BlockKind = "basic" | "bottleneck";
export type Stage = "stem" | "layer1" | "layer2" | "layer3" | "layer4" | "fc";

export const ARCHITECTURES: Record<Depth, { block: BlockKind; layers: [number, number, number, number] }> = {
  10: { block: "basic", layers: [1, 1, 1, 1] },
  18: { block: "basic", layers: [2, 2, 2, 2] },
  34: { block: "basic", layers: [3, 4, 6, 3] },
  50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  101: { block: "bottleneck", layers: [3, 4, 23, 3] },
  152: { block: "bottleneck", layers: [3, 8, 36, 3] },
};

export interface ResNetOptions {
  /** classifier outputs; 0 builds no `fc` (an encoder) */
  numClasses?: number;
  /** planes of layer1..layer4 (torchvision: 64, 128, 256, 512); the stem has widths[0] channels */
  widths?: [number, number, number, number];
  /**
   * Input pixels per output position: 32 (torchvision), 16, where layer4 keeps layer3's
   * resolution (no stride; same parameters), or 8, where layer3 keeps layer2's too, so small
   * images still give a grid of image tokens (4 x 4 at 16, 8 x 8 at 8, rather than 2 x 2 at 64 px).
   */
  outputStride?: 8 | 16 | 32;
  /**
   * The stem's 3x3 stride-2 max-pool (torchvision: true). Without it layer1 works at twice the
   * resolution (4x its cost), so small objects keep their outline; the output stride is still
   * `outputStride` (the later stages take the stride the pool gave), at most 16.
   */
  maxPool?: boolean;
  /**
   * The stem conv's kernel (torchvision: 7; odd), stride 2 either way. Small images gain little
   * from a 7 x 7 stem: a 3 x 3 one costs 5x less on 3 input channels.
   */
  stemKernel?: number;
  device?: TensorOptions["device"];
  dtype?: TensorOptions["dtype"];
}

const conv = (cin: number, cout: number, k: number, stride: number, o: TensorOptions) =>
  new nn.Conv2d(cin, cout, k, { stride, padding: (k - 1) / 2, bias: false, ...o });

/**
 * relu?(bn(conv(x)) + residual?). With the batchnorm on its running statistics (eval, or frozen)
 * and nothing for autograd to record, one fused kernel (F.conv2dFused) does it all, the batchnorm
 * folded into a per-channel scale and shift; otherwise the conv runs, then the batchnorm with the
 * add and relu fused into its kernels (training normalises with the batch's statistics and
 * updates the running ones).
 */
function convBn(
  conv: nn.Conv2d,
  bn: nn.BatchNorm2d,
  x: Tensor,
  { residual, relu = false }: { residual?: Tensor; relu?: boolean } = {},
): Tensor {
  const inputs = [x, residual, conv.weight, conv.bias, bn.weight, bn.bias];
  if (bn.training || (isGradEnabled() && inputs.some((t) => t?.requiresGrad))) {
    return bn.forward(conv.forward(x), { residual, relu });
  }
  const { scale, shift } = F.batchNormFold(
    bn.weight,
    bn.bias,
    bn.runningMean,
    bn.runningVar,
    bn.opts.eps ?? 1e-5,
    conv.bias,
  );
  return F.conv2dFused(x, conv.weight, { scale, shift, residual, relu }, conv.opts);
}

/** A block's shortcut: x, or the downsample's conv + bn. */
function shortcut(downsample: nn.Sequential | null, x: Tensor): Tensor {
  if (!downsample) return x;
  const [conv, bn] = downsample.layers as [nn.Conv2d, nn.BatchNorm2d];
  return convBn(conv, bn, x);
}

class BasicBlock extends nn.Module {
  static readonly expansion = 1;
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  downsample: nn.Sequential | null;
  constructor(
    cin: number,
    planes: number,
    stride: number,
    downsample: nn.Sequential | null,
    o: TensorOptions,
  ) {
    super();
    this.conv1 = conv(cin, planes, 3, stride, o);
    this.bn1 = new nn.BatchNorm2d(planes, o);
    this.conv2 = conv(planes, planes, 3, 1, o);
    this.bn2 = new nn.BatchNorm2d(planes, o);
    this.downsample = downsample;
  }
  forward(x: Tensor): Tensor {
    const h = convBn(this.conv1, this.bn1, x, { relu: true });
    return convBn(this.conv2, this.bn2, h, { residual: shortcut(this.downsample, x), relu: true });
  }
}

class Bottleneck extends nn.Module {
  static readonly expansion = 4;
  conv1: nn.Conv2d;
  bn1: nn.BatchNorm2d;
  conv2: nn.Conv2d;
  bn2: nn.BatchNorm2d;
  conv3: nn.Conv2d;
  bn3: nn.BatchNorm2d;
  downsample: nn.Sequential | null;
  constructor(
    cin: number,
    planes: number,
    stride: number,
    downsample: nn.Sequential | null,
    o: TensorOptions,
  ) {
    super();
    this.conv1 = conv(cin, planes, 1, 1, o);
    this.bn1 = new nn.BatchNorm2d(planes, o);
    this.conv2 = conv(planes, planes, 3, stride, o);
    this.bn2 = new nn.BatchNorm2d(planes, o);
    this.conv3 = conv(planes, planes * 4, 1, 1, o);
    this.bn3 = new nn.BatchNorm2d(planes * 4, o);
    this.downsample = downsample;
  }
  forward(x: Tensor): Tensor {
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    h = convBn(this.conv2, this.bn2, h, { relu: true });
    return convBn(this.conv3, this.bn3, h, { residual: shortcut(this.downsample, x), relu: true });
  }
}

export interface FinetuneOptions {
  /** stages whose parameters train; the rest are frozen (default: the seed's layer3 and layer4) */
  trainable?: Stage[];
  /**
   * Keep every BatchNorm in inference mode (running statistics, no updates) even in train():
   * batch statistics of small batches are noise. Frozen stages always are. Default true.
   */
  frozenBatchNorm?: boolean;
}

export class ResNet extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly layer1: nn.Sequential;
  readonly layer2: nn.Sequential;
  readonly layer3: nn.Sequential;
  readonly layer4: nn.Sequential;
  readonly fc: nn.Linear | null;
  /** channels of the layer4 output (the image tokens' width) */
  readonly featureDim: number;
  readonly maxPool: boolean;
  #frozenBN = new Set<nn.BatchNorm2d>();

  constructor(readonly block: BlockKind, readonly layers: readonly number[], opts: ResNetOptions = {}) {
    super();
    const o = { device: opts.device, dtype: opts.dtype };
    const widths = opts.widths ?? [64, 128, 256, 512], numClasses = opts.numClasses ?? 1000;
    const B = block === "basic" ? BasicBlock : Bottleneck;
    const stem = opts.stemKernel ?? 7;
    if (!(Number.isInteger(stem) && stem % 2 === 1 && stem > 0)) {
      throw new Error(`resnet: stemKernel must be an odd number of pixels, got ${stem}`);
    }
    this.conv1 = new nn.Conv2d(3, widths[0], stem, { stride: 2, padding: (stem - 1) / 2, bias: false, ...o });
    this.bn1 = new nn.BatchNorm2d(widths[0], o);
    let cin = widths[0];
    // `keep`: the stage keeps its input's resolution (output stride 16 or 8) but has the modules,
    // and so the state dict, that its stride would give it
    const stage = (planes: number, blocks: number, stride: number, keep = false) => {
      const cout = planes * B.expansion, s = keep ? 1 : stride;
      const down = stride !== 1 || cin !== cout
        ? new nn.Sequential(conv(cin, cout, 1, s, o), new nn.BatchNorm2d(cout, o))
        : null;
      const list = [new B(cin, planes, s, down, o)];
      for (let i = 1; i < blocks; i++) list.push(new B(cout, planes, 1, null, o));
      cin = cout;
      return new nn.Sequential(...list);
    };
    const os = opts.outputStride ?? 32;
    if (![8, 16, 32].includes(os)) throw new Error(`resnet: outputStride must be 8, 16 or 32, got ${os}`);
    this.maxPool = opts.maxPool ?? true;
    if (!this.maxPool && os === 32) {
      throw new Error("resnet: without the stem's max-pool the output stride is at most 16");
    }
    // the stride so far; a stage keeps its resolution once the next halving would pass `os`
    let stride = this.maxPool ? 4 : 2;
    const keep = () => (stride * 2 > os ? true : (stride *= 2, false));
    this.layer1 = stage(widths[0], layers[0], 1);
    this.layer2 = stage(widths[1], layers[1], 2, keep());
    this.layer3 = stage(widths[2], layers[2], 2, keep());
    this.layer4 = stage(widths[3], layers[3], 2, keep());
    this.featureDim = cin;
    this.fc = numClasses > 0 ? new nn.Linear(cin, numClasses, o) : null;
  }

  /** The stage's modules (the stem is conv1 + bn1). */
  stage(name: Stage): nn.Module[] {
    if (name === "stem") return [this.conv1, this.bn1];
    if (name === "fc") return this.fc ? [this.fc] : [];
    return [this[name]];
  }

  /** layer4's output [N, C, h, w] (7 x 7 at 224 input). */
  trunk(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== 3) {
      throw new Error(`resnet: input should be [N, 3, H, W], got [${x.shape}]`);
    }
    let h = convBn(this.conv1, this.bn1, x, { relu: true });
    if (this.maxPool) h = F.maxPool2d(h, 3, { stride: 2, padding: 1 });
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) h = layer.forward(h);
    return h;
  }

  /** Image tokens: layer4 flattened to [N, h * w, C] (49 x 2048 at 224 for ResNet-50 and up). */
  features(x: Tensor): Tensor {
    const h = this.trunk(x), [N, C] = h.shape;
    return F.permute(F.reshape(h, [N, C, -1]), [0, 2, 1]);
  }

  /** Class logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    if (!this.fc) throw new Error("resnet: built with numClasses 0 (an encoder); use features()");
    return this.fc.forward(F.flatten(F.adaptiveAvgPool2d(this.trunk(x), 1), 1));
  }

  /**
   * The fine-tuning policy: parameters of the stages not in `trainable` stop requiring gradients
   * (so autograd records nothing through them), and BatchNorm layers stay in inference mode.
   */
  finetune({ trainable = ["layer3", "layer4"], frozenBatchNorm = true }: FinetuneOptions = {}): this {
    this.#frozenBN.clear();
    for (const name of ["stem", "layer1", "layer2", "layer3", "layer4", "fc"] as Stage[]) {
      const train = trainable.includes(name);
      for (const m of this.stage(name)) {
        for (const p of m.parameters()) p.requiresGrad = train;
        if (!train || frozenBatchNorm) { for (const bn of batchNorms(m)) this.#frozenBN.add(bn); }
      }
    }
    return this.train(this.training);
  }

  /** Parameters that train under the current policy (what an optimizer should get). */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  override train(mode = true): this {
    super.train(mode);
    for (const bn of this.#frozenBN) bn.training = false;
    return this;
  }
}

function batchNorms(m: nn.Module): nn.BatchNorm2d[] {
  return [
    ...(m instanceof nn.BatchNorm2d ? [m] : []),
    ...m.children().flatMap(([, c]) => batchNorms(c)),
  ];
}

/** torchvision's resnet18 ... resnet152 (random weights; load ImageNet ones with loadWeights). */
export function resnet(depth: Depth, opts: ResNetOptions = {}): ResNet {
  const arch = ARCHITECTURES[depth];
  if (!arch) throw new Error(`resnet: depth must be one of 10, 18, 34, 50, 101, 152, got ${depth}`);
  return new ResNet(arch.block, arch.layers, opts);
}
