// The one PRNG: a counter-based hash, identical in TypeScript and WGSL, so a seed gives the same
// numbers on every backend and a kernel can draw its own without a state buffer.
//
//   bits(key, i) = pcg(i + pcg(key))         (u32 arithmetic, wrapping)
//   uniform      = (bits >>> 8) * 2^-24       in [0, 1), exactly representable in f32
//   normal       = Box-Muller on the pair (bits(key, 2i), bits(key, 2i + 1))
//
// pcg is the PCG-RXS-M-XS hash recommended by Jarzynski & Olano, "Hash Functions for GPU
// Rendering" (JCGT 2020). Every random op takes a fresh key from the global generator
// (seed, counter), so runs are reproducible from `manualSeed` and resumable from `rngState`.

export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

export const WGSL_PCG = /* wgsl */ `
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn rand_bits(key: u32, i: u32) -> u32 { return pcg(i + pcg(key)); }`;

export function bits(key: number, i: number): number {
  return pcg((i + pcg(key)) >>> 0);
}

export function uniformAt(key: number, i: number): number {
  return (bits(key, i) >>> 8) * 2 ** -24;
}

export function normalAt(key: number, i: number): number {
  const u1 = ((bits(key, 2 * i) >>> 8) + 1) * 2 ** -24; // (0, 1]: log is finite
  const u2 = (bits(key, 2 * i + 1) >>> 8) * 2 ** -24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

let seed = 0x5eed, counter = 0;

export function manualSeed(s: number): void {
  seed = s >>> 0;
  counter = 0;
}

export function rngState(): { seed: number; counter: number } {
  return { seed, counter };
}

export function setRngState(s: { seed: number; counter: number }): void {
  seed = s.seed >>> 0;
  counter = s.counter;
}

/** A fresh stream key; each random op consumes one. */
export function nextKey(): number {
  return pcg((seed ^ pcg(counter++)) >>> 0);
}
