// The captioning model: ResNet encoder, Transformer decoder, decoding, weights I/O, preprocessing.

export { attention, type AttentionOptions, type AttentionResult, causalBias } from "./attention.ts";
export { type Caption, Captioner, type CaptionerConfig, type GenerateOptions } from "./captioner.ts";
export { Decoder, DECODER_DEFAULTS, type DecoderOptions, type Memory, positions } from "./decoder.ts";
export { KVCache } from "./kv_cache.ts";
export { captionLoss, LOSS_DEFAULTS, type LossOptions, type LossTerms } from "./loss.ts";
export {
  imageBatch,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type Pixels,
  preprocess,
  type PreprocessOptions,
  resizedSize,
} from "./preprocess.ts";
export { decodePth, readPth } from "./pth.ts";
export {
  ARCHITECTURES,
  type Depth,
  type FinetuneOptions,
  ResNet,
  resnet,
  type ResNetOptions,
  type Stage,
} from "./resnet.ts";
export {
  type BeamOptions,
  beamSearch,
  greedy,
  type Hypothesis,
  lengthPenalty,
  sample,
  type SampleOptions,
  type SearchOptions,
} from "./search.ts";
export { type LoadOptions, loadWeights, readWeights } from "./weights.ts";
