// Timing kernel variants side by side (bench/attention_ab.ts, matmul_ab.ts, conv_ab.ts). On the shared
// 2-core hosts a kernel's time drifts by up to 1.5x from one second to the next, so separate medians
// hide 10% differences; launches that run back to back in one submission see the same host, as the
// tuner's candidates do (bench/RESULTS.md, session 20).

import { gpu } from "../tensor/mod.ts";
import type { Dispatch } from "../tensor/webgpu/runtime.ts";
import { tuner } from "../tensor/webgpu/tuner.ts";
import { forceVariant } from "../tensor/webgpu/variants.ts";

/** The launches `call` makes that `keep` accepts, recorded instead of run (the others run). */
export const record = (call: () => void, keep?: (d: Dispatch) => boolean): Dispatch[] =>
  gpu().recording(call, keep)[1];

/**
 * Each set of launches' GPU time in each of `rounds` rounds; a round runs every set back to back in
 * one timed submission, and each round starts one set later than the last.
 */
export async function sideBySide(sets: Dispatch[][], rounds: number): Promise<number[][]> {
  const ms: number[][] = sets.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const order = sets.map((_, i) => (i + r) % sets.length);
    const times = await gpu().timed(order.flatMap((i) => sets[i]));
    let at = 0;
    for (const i of order) ms[i].push(times.slice(at, at += sets[i].length).reduce((a, b) => a + b, 0));
  }
  return ms;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * `op`'s variants `names` side by side in `call`: with each one forced, one call to compile and tune
 * the rest, then one recorded (its launches that `keep` accepts); then those sets timed in `rounds`
 * rotated rounds. Each variant's launches and its times, ms per round.
 */
export async function variantsSideBySide(
  op: string,
  names: string[],
  call: () => void,
  rounds: number,
  keep?: (d: Dispatch) => boolean,
): Promise<{ launches: Dispatch[][]; ms: number[][] }> {
  const launches: Dispatch[][] = [];
  for (const name of names) {
    forceVariant(op, name);
    call();
    await tuner.settled();
    await gpu().done();
    launches.push(record(call, keep));
  }
  forceVariant(op, null);
  return { launches, ms: await sideBySide(launches, rounds) };
}
