// Which records a process sees, in which order. Every rank and worker computes the same global order
// from (seed, epoch) and takes every parts-th item from its offset, so the parts are disjoint and
// together cover each record exactly once per epoch, whatever the number of processes.
import { permutation, randInt, rng } from "./rng.ts";

export interface ShardSpec {
  /** This process's rank among `worldSize` (data-parallel replicas). */
  rank?: number;
  worldSize?: number;
  /** This loader's index among `numWorkers` loaders inside one rank. */
  workerId?: number;
  numWorkers?: number;
}

/** (part, parts) of a shard spec, validated. */
export function partOf(spec: ShardSpec): { part: number; parts: number } {
  const { rank = 0, worldSize = 1, workerId = 0, numWorkers = 1 } = spec;
  if (!(rank >= 0 && rank < worldSize && workerId >= 0 && workerId < numWorkers)) {
    throw new Error(`bad sharding: rank ${rank} of ${worldSize}, worker ${workerId} of ${numWorkers}`);
  }
  return { part: rank * numWorkers + workerId, parts: worldSize * numWorkers };
}

/** Indices into n items that this part visits in `epoch`, in order. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean, spec: ShardSpec = {}) {
  const { part, parts } = partOf(spec);
  const order = shuffle
    ? permutation(n, rng(seed, "order", epoch))
    : Uint32Array.from({ length: n }, (_, i) => i);
  return order.filter((_, i) => i % parts === part);
}

/** Streaming shuffle for sources too large to permute (tar shards): hold `capacity` items, emit a random
 * one as each new one arrives. Deterministic for a given random source and input order. */
export async function* shuffleBuffer<T>(items: AsyncIterable<T>, capacity: number, random: () => number) {
  const buffer: T[] = [];
  for await (const item of items) {
    if (buffer.length < capacity) {
      buffer.push(item);
      continue;
    }
    const j = randInt(random, capacity);
    yield buffer[j];
    buffer[j] = item;
  }
  while (buffer.length) {
    const j = randInt(random, buffer.length);
    yield buffer[j];
    buffer[j] = buffer[buffer.length - 1];
    buffer.pop();
  }
}
