// Deterministic randomness: every random choice in data/ is a pure function of (seed, labels...), so
// that a run, a resumed run and a different worker count all see the same permutation, captions and
// augmentations.

/** 32-bit FNV-1a over the labels' text: stable across runs and platforms. */
export function hash32(...labels: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const label of labels) {
    const s = String(label) + "\u0000";
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, and good enough for shuffling and augmentation draws. */
export function rng(...labels: (string | number)[]): () => number {
  let a = hash32(...labels);
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

export function pick<T>(random: () => number, items: readonly T[]): T {
  return items[randInt(random, items.length)];
}

/** Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, random: () => number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = randInt(random, i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
