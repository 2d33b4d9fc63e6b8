// Augmentation as a function of a level in [0, 1]: each op fires with its probability times the level,
// so level 0 is the plain resize / centre crop and the trainer can ramp difficulty up over training.
// Plans are drawn on the main thread (they may rewrite captions) and applied in the decode worker.

export interface AugmentPlan {
  /** Zoom >= 1: the crop covers 1/zoom of the short side. */
  zoom: number;
  /** Crop centre offset in [-1, 1] as a share of the slack on each axis. */
  offsetX: number;
  offsetY: number;
  flip: boolean;
  /** Rotation in radians. */
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
  /** Gaussian noise standard deviation on [0, 1] pixels, and its seed. */
  noise: number;
  noiseSeed: number;
  /** JPEG re-compression quality, 0 for none. */
  jpegQuality: number;
  /** Unsharp-mask amount and blur mix, both in [0, 1]. */
  sharpen: number;
  blur: number;
}

export const IDENTITY_PLAN: AugmentPlan = {
  zoom: 1,
  offsetX: 0,
  offsetY: 0,
  flip: false,
  angle: 0,
  brightness: 1,
  contrast: 1,
  saturation: 1,
  noise: 0,
  noiseSeed: 0,
  jpegQuality: 0,
  sharpen: 0,
  blur: 0,
};

export interface AugmentOptions {
  /** Probability of each op at level 1. */
  p?: Partial<Record<"scale" | "flip" | "rotate" | "jitter" | "noise" | "jpeg" | "sharpen" | "blur", number>>;
  maxZoom?: number;
  maxDegrees?: number;
  /** A flipped image says left where its caption says right: swap the words, or do not flip. */
  flipCaptions?: "swap" | "skip";
}

const DEFAULT_P = {
  scale: 0.5,
  flip: 0.5,
  rotate: 0.3,
  jitter: 0.5,
  noise: 0.2,
  jpeg: 0.2,
  sharpen: 0.1,
  blur: 0.1,
};

/** The level after `progress` in [0, 1] of training: (e^(c x) - 1) / (e^c - 1), x itself as c -> 0. */
export function rampLevel(progress: number, c = 5): number {
  const x = Math.min(1, Math.max(0, progress));
  return Math.abs(c) < 1e-9 ? x : Math.expm1(c * x) / Math.expm1(c);
}

const SIDE = /\b(left|right)\b/gi;

/** Swap "left" and "right", keeping the case of the first letter. */
export function flipCaption(text: string): string {
  return text.replace(SIDE, (w) => {
    const swapped = w.toLowerCase() === "left" ? "right" : "left";
    return w[0] === w[0].toUpperCase() ? swapped[0].toUpperCase() + swapped.slice(1) : swapped;
  });
}

/** Draw a plan for one image at `level`, and the references as they read after the plan. */
export function planAugment(
  random: () => number,
  level: number,
  references: string[],
  opts: AugmentOptions = {},
): { plan: AugmentPlan; references: string[] } {
  const p = { ...DEFAULT_P, ...opts.p };
  const fires = (prob: number) => random() < prob * level;
  const between = (lo: number, hi: number) => lo + (hi - lo) * random();
  const plan = { ...IDENTITY_PLAN };
  // Every draw happens whether or not its op fires, so one op's probability never shifts another's draws.
  const draws = {
    scale: [fires(p.scale), between(1, opts.maxZoom ?? 1.4), between(-1, 1), between(-1, 1)],
    flip: [fires(p.flip)],
    rotate: [fires(p.rotate), between(-1, 1) * (opts.maxDegrees ?? 15) * Math.PI / 180],
    jitter: [fires(p.jitter), between(0.7, 1.3), between(0.7, 1.3), between(0.5, 1.5)],
    noise: [fires(p.noise), between(0.01, 0.06), Math.floor(random() * 2 ** 32)],
    jpeg: [fires(p.jpeg), Math.round(between(20, 70))],
    sharpen: [fires(p.sharpen), between(0.3, 1)],
    blur: [fires(p.blur), between(0.3, 1)],
  } as const;
  if (draws.scale[0]) [plan.zoom, plan.offsetX, plan.offsetY] = draws.scale.slice(1) as number[];
  if (draws.rotate[0]) plan.angle = draws.rotate[1];
  if (draws.jitter[0]) [plan.brightness, plan.contrast, plan.saturation] = draws.jitter.slice(1) as number[];
  if (draws.noise[0]) [plan.noise, plan.noiseSeed] = draws.noise.slice(1) as number[];
  if (draws.jpeg[0]) plan.jpegQuality = draws.jpeg[1];
  if (draws.sharpen[0]) plan.sharpen = draws.sharpen[1];
  if (draws.blur[0]) plan.blur = draws.blur[1];

  const namesSide = references.some((r) => /\b(left|right)\b/i.test(r));
  if (draws.flip[0] && !(namesSide && opts.flipCaptions === "skip")) {
    plan.flip = true;
    return { plan, references: references.map(flipCaption) };
  }
  return { plan, references };
}
