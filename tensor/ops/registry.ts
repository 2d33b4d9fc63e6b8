// Every public differentiable op registers its name here; tests/registry_test.ts fails when one
// exists without a gradient check, so no op can skip them.

export const OPS = new Set<string>();

export function register(...names: string[]): void {
  for (const n of names) OPS.add(n);
}
