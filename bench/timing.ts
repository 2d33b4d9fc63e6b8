// Median time of one call, fair to fast GPUs and slow CPU adapters alike: waiting for the device
// costs a fixed latency (about 12 ms per wait through Deno's WebGPU on an H200, where a 512^3
// matmul takes 0.05 ms; 11 ms on llvmpipe, through Vulkan or GL, with nothing submitted: the
// runtime's polling, not the device), so calls are timed in batches of `count` back-to-back calls
// and one wait, `count` doubling until a batch takes at least `minBatchMs`.

/** ms per call of a batch of `count` calls and one wait */
async function batchMs(call: () => void, wait: () => Promise<void>, count: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) call();
  await wait();
  return (performance.now() - t0) / count;
}

/** The batch size for `call`, after one batch that compiles, tunes and grows pools. */
async function batchSize(call: () => void, wait: () => Promise<void>, minBatchMs: number): Promise<number> {
  await batchMs(call, wait, 1);
  let count = 1;
  while (count < 256 && count * (await batchMs(call, wait, count)) < minBatchMs) count *= 2;
  return count;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function medianMs(
  call: () => void,
  wait: () => Promise<void>,
  reps = 3,
  minBatchMs = 100,
): Promise<number> {
  const count = await batchSize(call, wait, minBatchMs);
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) ts.push(await batchMs(call, wait, count));
  return median(ts);
}

/**
 * How many times faster `a` is than `b`, from batches of each taken in turn (b a, a b, ...), so
 * that both see the same host: on the shared 2-core hosts one call's median varies by up to 1.5x
 * between runs (bench/RESULTS.md, session 17), which two separate medians would turn into the
 * ratio. The median of `pairs` ratios, and their range.
 */
export async function pairedSpeedup(
  a: () => void,
  b: () => void,
  wait: () => Promise<void>,
  pairs = 9,
  minBatchMs = 100,
): Promise<{ speedup: number; low: number; high: number }> {
  const [na, nb] = [await batchSize(a, wait, minBatchMs), await batchSize(b, wait, minBatchMs)];
  const timeA = () => batchMs(a, wait, na), timeB = () => batchMs(b, wait, nb);
  const ratios: number[] = [];
  for (let p = 0; p < pairs; p++) {
    let ta: number, tb: number;
    if (p % 2 === 0) [tb, ta] = [await timeB(), await timeA()];
    else [ta, tb] = [await timeA(), await timeB()];
    ratios.push(tb / ta);
  }
  return { speedup: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios) };
}
