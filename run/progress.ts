// A one-line progress bar with ETA on a terminal, or a line every few seconds in a log file.

const enc = new TextEncoder();

export class Progress {
  #start = performance.now();
  #last = 0;
  readonly tty = Deno.stderr.isTerminal();

  /** `secondsLeft`: the run also stops when that reaches 0, and the ETA says so. */
  constructor(
    readonly total: number,
    readonly label = "step",
    readonly startAt = 0,
    readonly secondsLeft = () => Infinity,
  ) {}

  /** Redraws for `done` of `total`, with `info` after the bar. */
  update(done: number, info = ""): void {
    const now = performance.now();
    if (!this.tty && now - this.#last < 5000 && done < this.total) return;
    this.#last = now;
    const frac = Math.min(1, done / this.total), width = 24;
    const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
    const rate = (done - this.startAt) / ((now - this.#start) / 1000);
    const eta = Math.max(0, Math.min(rate > 0 ? (this.total - done) / rate : Infinity, this.secondsLeft()));
    const line = `[${bar}] ${
      (100 * frac).toFixed(0).padStart(3)
    }% ${this.label} ${done}/${this.total} ${info} ETA ${formatSeconds(eta)}`;
    Deno.stderr.writeSync(enc.encode(this.tty ? `\r\x1b[2K${line}` : `${line}\n`));
  }

  /** Ends the bar's line so the next output starts clean. */
  done(): void {
    if (this.tty) Deno.stderr.writeSync(enc.encode("\n"));
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
    : `${m}m${String(sec).padStart(2, "0")}s`;
}
