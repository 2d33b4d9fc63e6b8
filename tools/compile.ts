// `deno task compile`: builds dist/captioner, a standalone binary (infer by default; train and eval
// as subcommands) with the shipped model embedded. `deno compile` needs Deno's runtime binary
// (denort 2.9.6): it downloads it from dl.deno.land, or uses the file DENORT_BIN names.

const denort = Deno.env.get("DENORT_BIN");
if (denort) {
  try {
    await Deno.stat(denort);
  } catch {
    console.error(`compile: DENORT_BIN=${denort} does not exist`);
    Deno.exit(1);
  }
}
const args = [
  "compile",
  "-A",
  "--unstable-webgpu",
  // embed only the npm packages the program reaches (not the benches' tfjs / transformers.js,
  // which would add ~500 MB)
  "--node-modules-dir=none",
  "--exclude-unused-npm",
  "--include",
  "models/tiny/model.safetensors",
  // the loader's decode workers (train and eval subcommands) start from this module
  "--include",
  "data/decode_worker.ts",
  // the shipped kernel choices (tensor/webgpu/tuner.ts): without them a first run measures kernels
  "--include",
  "kernels/tuned",
  "--output",
  "dist/captioner",
  "cli.ts",
];
const { code } = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "inherit" })
  .spawn().status;
if (code !== 0) {
  console.error(
    "compile: `deno compile` failed. It needs the denort runtime for Deno 2.9.6: either network access to " +
      "dl.deno.land (it downloads denort once), or DENORT_BIN set to a local denort binary of the same version " +
      "(e.g. unzipped from https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip).",
  );
  Deno.exit(code);
}
console.log("built dist/captioner: try `dist/captioner some-image.png`");
