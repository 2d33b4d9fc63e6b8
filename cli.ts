// The standalone `captioner` binary (`deno task compile`): infer by default, train and eval as
// subcommands.
//   captioner img.png ...            captioner infer img.png ...
//   captioner train [options]        captioner eval [options]

import { main as evaluate } from "./eval.ts";
import { main as infer } from "./infer.ts";
import { main as train } from "./train.ts";

const [command, ...rest] = Deno.args;
const run = command === "train"
  ? () => train(rest)
  : command === "eval"
  ? () => evaluate(rest)
  : command === "infer"
  ? () => infer(rest)
  : () => infer(Deno.args);
try {
  Deno.exit(await run());
} catch (e) {
  console.error(`captioner: ${(e as Error).message}`);
  Deno.exit(1);
}
