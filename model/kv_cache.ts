// The state of incremental decoding: for every layer, the self-attention keys and values of the
// tokens decoded so far (preallocated for the maximum length, so a step writes one slot instead of
// copying the whole prefix) and the cross-attention keys and values of the image tokens (computed
// once). Rows are hypotheses; beam search reorders and drops them with `select`.

import { F, noGrad, type Tensor, tensor, tidy } from "../tensor/mod.ts";
import type { KeysValues } from "./transformer.ts";

export class KVCache {
  /** Positions decoded so far (the next token's position). */
  length = 0;

  constructor(
    /** per layer: [R, H, maxLength, dh] each */
    readonly self: KeysValues[],
    /** per layer: [R, H, N, dh] each */
    readonly cross: KeysValues[],
  ) {
    for (const t of this.#tensors()) t.keep();
  }

  get rows(): number {
    return this.self[0].k.shape[0];
  }

  get maxLength(): number {
    return this.self[0].k.shape[2];
  }

  /**
   * Keeps row `rows[i]` as new row i (rows may repeat, be dropped or reordered): how beam search
   * follows its hypotheses. A no-op for the identity.
   */
  select(rows: ArrayLike<number>): void {
    if (rows.length === this.rows && Array.from(rows).every((r, i) => r === i)) return;
    if (rows.length === 0) throw new Error("KVCache.select: no rows left");
    const old = this.#tensors();
    const idx = tensor(Int32Array.from(rows), [rows.length], { device: old[0].device, dtype: "i32" });
    // keep() after tidy: the gathered rows belong to the cache, not to any enclosing scope.
    const pick = (t: Tensor) => tidy(() => noGrad(() => gatherRows(t, idx))).keep();
    for (const kv of [...this.self, ...this.cross]) {
      kv.k = pick(kv.k);
      kv.v = pick(kv.v);
    }
    idx.dispose();
    for (const t of old) t.dispose();
  }

  dispose(): void {
    for (const t of this.#tensors()) t.dispose();
  }

  #tensors(): Tensor[] {
    return [...this.self, ...this.cross].flatMap((kv) => [kv.k, kv.v]);
  }
}

/** t [R, ...] at rows idx [R'] -> [R', ...] (a gather of flattened rows). */
export function gatherRows(t: Tensor, idx: Tensor): Tensor {
  const rest = t.shape.slice(1);
  return F.reshape(F.embedding(idx, F.reshape(t, [t.shape[0], -1])), [idx.shape[0], ...rest]);
}
