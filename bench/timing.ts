// Median time of one call, fair to fast GPUs and slow CPU adapters alike: waiting for the device
// costs a fixed latency (about 12 ms per wait through Deno's WebGPU on an H200, where a 512^3
// matmul takes 0.05 ms), so calls are timed in batches of `count` back-to-back calls and one wait,
// `count` doubling until a batch takes at least `minBatchMs`. On llvmpipe one call usually does.

export async function medianMs(
  call: () => void,
  wait: () => Promise<void>,
  reps = 3,
  minBatchMs = 100,
): Promise<number> {
  const batch = async (count: number) => {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) call();
    await wait();
    return performance.now() - t0;
  };
  await batch(1); // compile, tune, grow pools
  let count = 1;
  while (count < 256 && (await batch(count)) < minBatchMs) count *= 2;
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) ts.push((await batch(count)) / count);
  return ts.sort((a, b) => a - b)[Math.floor(reps / 2)];
}
