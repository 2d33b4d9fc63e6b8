import assert from "node:assert";
import { F } from "../tensor/mod.ts";
import { CASES } from "./op_cases.ts";

Deno.test("every registered op has gradient-check cases", () => {
  const missing = [...F.OPS].filter((op) => !(op in CASES) || CASES[op].length === 0);
  assert(missing.length === 0, `ops without gradient checks: ${missing.join(", ")}`);
  const stale = Object.keys(CASES).filter((op) => !F.OPS.has(op));
  assert(stale.length === 0, `cases for ops that are not registered: ${stale.join(", ")}`);
});
