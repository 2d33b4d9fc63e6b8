// Properties of the generated WGSL that no result would show: the kernels' speed on CPU adapters
// depends on them (bench/RESULTS.md step 44, bench/params_alias.ts).
import assert from "node:assert/strict";
import { binaryWGSL, unaryWGSL, whereWGSL } from "../kernels/elementwise.ts";
import { gatherWGSL } from "../kernels/gather.ts";

/** The bodies of the `for` loops in `code` that store to a buffer. */
function storingLoops(code: string): string[] {
  const loops: string[] = [];
  for (let at = code.indexOf("for ("); at >= 0; at = code.indexOf("for (", at + 1)) {
    let depth = 0, i = code.indexOf("{", at);
    const open = i;
    for (; i < code.length; i++) {
      if (code[i] === "{") depth++;
      if (code[i] === "}" && --depth === 0) break;
    }
    const body = code.slice(open, i + 1);
    if (/\]\s*=[^=]/.test(body)) loops.push(body);
  }
  return loops;
}

Deno.test("kernels whose loops store read params before the loop (a store may alias them)", () => {
  const kernels = [
    binaryWGSL("a + b", ["flat", "flat", "flat"]),
    binaryWGSL("a * b", ["flat", "row:96", "scalar"]),
    unaryWGSL("max(x, 0.0)", ["flat", "flat"]),
    whereWGSL(["flat", "flat", "scalar", "flat"]),
    gatherWGSL([false, false]),
  ];
  for (const code of kernels) {
    const loops = storingLoops(code);
    assert(loops.length > 0, `no storing loop found in:\n${code}`);
    for (const body of loops) assert(!body.includes("params["), `params read in a storing loop:\n${body}`);
  }
});
