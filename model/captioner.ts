// The captioner: a ResNet encoder (image -> 49 tokens) and the Transformer decoder, with the loss
// used for training and the decoding strategies used for captions.

import { F, nn, noGrad, Tensor, tensor, type TensorOptions, tidy } from "../tensor/mod.ts";
import { Decoder, type DecoderOptions, type Memory } from "./decoder.ts";
import { captionLoss, LOSS_DEFAULTS, type LossTerms } from "./loss.ts";
import { type Depth, type FinetuneOptions, ResNet, resnet, type ResNetOptions } from "./resnet.ts";
import {
  type BeamOptions,
  beamSearch,
  greedy,
  type Hypothesis,
  sample,
  type SampleOptions,
} from "./search.ts";

export interface CaptionerConfig {
  vocabSize: number;
  /** special token ids (the tokenizer's defaults: pad 0, unk 1, bos 2, eos 3) */
  padId?: number;
  bosId?: number;
  eosId?: number;
  /**
   * The image encoder: a torchvision ResNet (depth and options) and its fine-tuning policy
   * (default: layer3 and layer4 train, BatchNorm frozen). null: `images` given to loss / generate
   * are already image tokens [B, N, featureDim].
   */
  encoder?: (ResNetOptions & { depth: Depth; finetune?: FinetuneOptions }) | null;
  decoder?: Partial<Omit<DecoderOptions, "vocabSize">>;
  loss?: Partial<typeof LOSS_DEFAULTS>;
  /** most generated tokens (default 75, the seed's) */
  maxLength?: number;
  device?: TensorOptions["device"];
  dtype?: TensorOptions["dtype"];
}

export type GenerateOptions =
  & Partial<Omit<BeamOptions & SampleOptions, "bosId" | "eosId">>
  & { strategy?: "beam" | "greedy" | "sample" };

export interface Caption extends Hypothesis {
  /** for beam search with numReturn > 1: every returned hypothesis, best first (this one included) */
  alternatives?: Hypothesis[];
}

export class Captioner extends nn.Module {
  readonly encoder: ResNet | null;
  readonly decoder: Decoder;
  readonly config: Required<Pick<CaptionerConfig, "vocabSize" | "padId" | "bosId" | "eosId" | "maxLength">>;
  readonly lossOptions: typeof LOSS_DEFAULTS;

  constructor(config: CaptionerConfig) {
    super();
    const { padId = 0, bosId = 2, eosId = 3, maxLength = 75, vocabSize } = config;
    for (const [name, id] of Object.entries({ padId, bosId, eosId })) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new Error(`captioner: ${name} ${id} outside the vocabulary`);
      }
    }
    this.config = { vocabSize, padId, bosId, eosId, maxLength };
    this.lossOptions = { ...LOSS_DEFAULTS, ...config.loss };
    const o = { device: config.device, dtype: config.dtype };
    if (config.encoder === null) this.encoder = null;
    else {
      const { depth = 101, finetune, ...opts } = config.encoder ?? { depth: 101 as Depth };
      this.encoder = resnet(depth, { ...o, ...opts, numClasses: 0 }).finetune(finetune);
    }
    this.decoder = new Decoder({
      featureDim: this.encoder?.featureDim,
      ...config.decoder,
      ...o,
      vocabSize,
    });
  }

  /** Parameters that train: the decoder's and the encoder's unfrozen stages. */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Images [B, 3, H, W] (preprocessed once, model/preprocess.ts) -> image tokens [B, N, F]. */
  imageTokens(images: Tensor): Tensor {
    return this.encoder ? this.encoder.features(images) : images;
  }

  /**
   * Teacher forcing on tokens [B * k, T] = BOS, words, EOS, padding; each position predicts the next
   * token. With k = `captionsPerImage` > 1, rows i * k .. i * k + k - 1 all caption image i: the
   * encoder runs once per image and the decoder learns from every reference, not one of them.
   */
  lossTerms(images: Tensor, tokens: Tensor | number[][], captionsPerImage = 1): LossTerms {
    const ids = this.#tokens(tokens);
    const T = ids.shape[1];
    if (T < 2) throw new Error(`captioner: captions need at least 2 tokens (BOS and one more), got ${T}`);
    const input = F.slice(ids, 1, 0, T - 1), target = F.slice(ids, 1, 1, T);
    let memory = this.decoder.memory(this.imageTokens(images));
    if (captionsPerImage > 1) {
      const repeated = new Map<Tensor, Tensor>(); // a shared projection repeats once
      const repeat = (m: Tensor) => {
        const [B, N, d] = m.shape;
        return F.reshape(F.expand(F.unsqueeze(m, 1), [B, captionsPerImage, N, d]), [
          B * captionsPerImage,
          N,
          d,
        ]);
      };
      memory = memory.map((m) => repeated.get(m) ?? repeated.set(m, repeat(m)).get(m)!);
    }
    if (memory[0].shape[0] !== ids.shape[0]) {
      throw new Error(
        `captioner: ${memory[0].shape[0]} caption rows for the images but ${ids.shape[0]} given`,
      );
    }
    const keyPadding = F.sub(1, F.indexMask(input, this.config.padId, memory[0]));
    const logits = this.decoder.forward(input, memory, keyPadding);
    return captionLoss(logits, target, {
      ...this.lossOptions,
      padId: this.config.padId,
      eosId: this.config.eosId,
    });
  }

  /** The training loss (a scalar): label-smoothed cross-entropy + beta x the EOS term. */
  loss(images: Tensor, tokens: Tensor | number[][]): Tensor {
    return this.lossTerms(images, tokens).loss;
  }

  /** One caption per image; beam search (beam 5, alpha 0.6) unless `strategy` says otherwise. */
  async generate(images: Tensor, opts: GenerateOptions = {}): Promise<Caption[]> {
    const wasTraining = this.training;
    this.eval();
    const memory: Memory = tidy(() => noGrad(() => this.decoder.memory(this.imageTokens(images))));
    for (const m of new Set(memory)) m.keep();
    try {
      const o = {
        maxLength: this.config.maxLength,
        // an empty caption is never an answer, however unsure a barely trained model is
        minLength: 1,
        ...opts,
        bosId: this.config.bosId,
        eosId: this.config.eosId,
      };
      const strategy = opts.strategy ?? "beam";
      if (strategy === "greedy") return await greedy(this.decoder, memory, o);
      if (strategy === "sample") return await sample(this.decoder, memory, o);
      const beams = await beamSearch(this.decoder, memory, o);
      return beams.map((hyps) => ({ ...hyps[0], ...(hyps.length > 1 ? { alternatives: hyps } : {}) }));
    } finally {
      for (const m of new Set(memory)) m.dispose();
      this.train(wasTraining);
    }
  }

  #tokens(tokens: Tensor | number[][]): Tensor {
    if (tokens instanceof Tensor) {
      if (tokens.dtype !== "i32" || tokens.ndim !== 2) {
        throw new Error(`captioner: tokens should be i32 [B, T], got ${tokens.dtype} [${tokens.shape}]`);
      }
      return tokens;
    }
    return tensor(tokens.flat(), [tokens.length, tokens[0]?.length ?? 0], {
      dtype: "i32",
      device: this.decoder.embed.weight.device,
    });
  }
}
