// Web Worker entry: decode jobs arrive as messages, results go back with their pixels transferred (not
// copied). The main thread never decodes.
import { type DecodeJob, runDecodeJob } from "./decode_job.ts";

// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = async (event: MessageEvent<DecodeJob>) => {
  const result = await runDecodeJob(event.data);
  scope.postMessage(result, result.ok && result.pixels ? [result.pixels.buffer] : []);
};
