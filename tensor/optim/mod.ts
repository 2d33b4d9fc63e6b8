export { type GroupSpec, Optimizer, type ParamGroup } from "./optimizer.ts";
export { Adam, type AdamGroup, type AdamOptions, AdamW } from "./adam.ts";
export { SGD, type SGDGroup } from "./sgd.ts";
export { clipGradNorm, gradNorm } from "./clip.ts";
export {
  cooldown,
  cosine,
  LRScheduler,
  type Schedule,
  warmupConstant,
  warmupInverseSqrt,
} from "./schedule.ts";
