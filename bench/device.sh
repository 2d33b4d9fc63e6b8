#!/usr/bin/env bash
# Everything a lent NVIDIA machine checks and times, in one go (prepare with bench/device_pack.sh,
# carry .gpu). Each step has its own time limit and writes its log under $OUT, so a slow step costs
# only itself.
#   bash bench/device.sh kernels   the test suite on the GPU adapter, PyTorch's fp32 matmul and ours
#   bash bench/device.sh model     bench --full (ours vs tfjs), model throughput, a short tiny training run
set -uo pipefail
out=${OUT:-/tmp/device-out}
mkdir -p "$out"
if [ ! -d node_modules ]; then mkdir node_modules && tar -C node_modules -xJf .gpu/node_modules.tar.xz; fi
# shellcheck source=/dev/null
source .gpu/enter.sh >"$out/adapter.txt" 2>&1
cat "$out/adapter.txt"
step() { # name, seconds, command...
  local name=$1 secs=$2
  shift 2
  echo "== $name ($(date +%T))"
  timeout "$secs" "$@" >"$out/$name.log" 2>&1
  echo "rc=$?" >>"$out/$name.log"
  grep -v 'XDG_RUNTIME_DIR\|Download\|│\|╭\|╰' "$out/$name.log" | tail -40
}
case "${1:-kernels}" in
kernels)
  step torch 60 python3 bench/torch_matmul.py 1024 2048 4096
  step matmul 150 deno run -A bench/gpu_matmul.ts
  cp bench/results/gpu_matmul.json "$out/" 2>/dev/null
  # transformers.js (the tokenizer parity reference) needs native packages not carried here, and
  # the trimmed node_modules lacks the type declarations: types are checked here, not there
  CAPTIONER_TUNE=0 step tests 200 deno test -A --quiet --no-check --ignore=tests/tokenizer_parity_test.ts tests/
  ;;
model)
  step bench 150 deno run -A bench/main.ts --full
  step model 90 deno run -A bench/model.ts
  cp bench/results/latest.json bench/results/model.json "$out/" 2>/dev/null
  step train 120 deno run -A train.ts --minutes 1 --testImages 200 --workers 8 --out /tmp/runs
  ;;
esac
