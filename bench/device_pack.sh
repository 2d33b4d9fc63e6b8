#!/usr/bin/env bash
# Prepares .gpu/ for a run of bench/device.sh on a lent GPU machine (no registry access there):
# ../shared/gpu/pack.sh bundles Deno, the Vulkan loader and the DENO_DIR; this adds the project's
# node_modules as .gpu/node_modules.tar.xz, trimmed to fit the 64 MiB that travels: the native
# packages only transformers.js needs (onnxruntime, sharp) keep their package.json, so Deno sees
# them installed, and lose their files; source maps, type declarations and tests go too.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bash ../shared/gpu/pack.sh
tmp=$(mktemp -d)
cp -a node_modules "$tmp/nm"
(cd "$tmp/nm/.deno" && for d in onnxruntime-node@* onnxruntime-web@* @img+sharp* @types+node@*; do
  [ -d "$d" ] && find "$d" -type f ! -name package.json ! -name .initialized -delete
done)
find "$tmp/nm" \( -name '*.map' -o -name '*_test.js' -o -name '*.d.ts' \) -delete
tar -C "$tmp/nm" -cJf .gpu/node_modules.tar.xz .
rm -rf "$tmp"
du -sh .gpu
echo "ready: run bench/device.sh there, carrying .gpu"
