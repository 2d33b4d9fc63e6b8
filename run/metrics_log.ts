// The run's metrics as JSON lines (one object per logged step), appended as training goes, for
// plotting tools or a dashboard. Every record carries the step and the wall time.

export class MetricsLog {
  #file: Deno.FsFile;
  #enc = new TextEncoder();

  private constructor(file: Deno.FsFile, readonly path: string) {
    this.#file = file;
  }

  static async open(path: string): Promise<MetricsLog> {
    return new MetricsLog(await Deno.open(path, { create: true, append: true }), path);
  }

  write(step: number, record: Record<string, unknown>): void {
    this.#file.writeSync(
      this.#enc.encode(JSON.stringify({ step, time: new Date().toISOString(), ...record }) + "\n"),
    );
  }

  close(): void {
    this.#file.close();
  }
}
