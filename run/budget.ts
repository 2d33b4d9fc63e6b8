// A run's time budget covers the whole run: setup, training, and the held-out evaluation at the
// end. Training stops early enough for the evaluation to fit, and that evaluation's cost depends on
// the adapter (146 s on one 2-core host, a third of that on another), so it is measured: once the
// model has trained for a while (its captions have their final lengths, roughly), one batch of
// held-out images is captioned as the final evaluation will caption them, and timed.

/**
 * The evaluation's share is this many times the measured cost: the model's captions grow longer
 * as it learns, and longer captions meet attention kernels not compiled yet (the default on a
 * 2-core host: 58 s estimated at 40% of the run, 84 s at the end; with the estimate taken after two
 * warm-up batches, 44 s and 88 s).
 */
const EVAL_MARGIN = 2;

export class TimeBudget {
  /** seconds the final evaluation is expected to take; null until `measure` */
  evalSeconds: number | null = null;

  /** `seconds`: the whole run's (Infinity: no budget); `origin`: performance.now() when it began. */
  constructor(readonly seconds: number, readonly origin = 0) {}

  elapsed(): number {
    return (performance.now() - this.origin) / 1000;
  }

  /** Seconds from the run's start by which training must stop: the rest is the evaluation's. */
  get trainSeconds(): number {
    return this.seconds - EVAL_MARGIN * (this.evalSeconds ?? 0);
  }

  /** How far training is through its time (0..1, more once over). */
  progress(): number {
    if (!Number.isFinite(this.seconds)) return 0;
    // an evaluation that needs the whole budget (or more) leaves training none
    return this.trainSeconds > 0 ? this.elapsed() / this.trainSeconds : Infinity;
  }

  /** Whether the evaluation's cost should be measured now: a budget, not yet measured, 40% spent. */
  due(): boolean {
    return Number.isFinite(this.seconds) && this.evalSeconds === null && this.elapsed() > 0.4 * this.seconds;
  }

  /** Records the evaluation's cost from one timed batch of `batchImages` out of `images`. */
  measure(batchSeconds: number, batchImages: number, images: number): void {
    this.evalSeconds = batchSeconds * Math.ceil(images / batchImages);
  }

  /** Whether training must stop now. */
  over(): boolean {
    return this.progress() >= 1;
  }
}
