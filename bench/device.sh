#!/usr/bin/env bash
# Everything a lent NVIDIA machine checks and times, in one go (prepare with bench/device_pack.sh,
# carry .gpu). Each step has its own time limit and writes its log under $OUT, so a slow step costs
# only itself.
#   bash bench/device.sh [step ...]   steps: torch matmul tests variants bench model train
#                                     (default: all but variants, about 10 minutes on an H200)
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
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(torch matmul tests bench model train)
for what in "${steps[@]}"; do
  case "$what" in
  torch) step torch 60 python3 bench/torch_matmul.py 1024 2048 4096 ;;
  matmul)
    step matmul 150 deno run -A bench/gpu_matmul.ts
    cp bench/results/gpu_matmul.json "$out/" 2>/dev/null
    ;;
  # transformers.js (the tokenizer parity reference) needs native packages not carried here, and
  # the trimmed node_modules lacks the type declarations: types are checked here, not there
  tests) CAPTIONER_TUNE=0 step tests 200 deno test -A --quiet --no-check --ignore=tests/tokenizer_parity_test.ts tests/ ;;
  variants) CAPTIONER_TUNE=0 step variants 60 deno test -A --quiet --no-check tests/variants_test.ts ;;
  bench)
    step bench 150 deno run -A bench/main.ts --full
    cp bench/results/latest.json "$out/" 2>/dev/null
    ;;
  model)
    step model 120 deno run -A bench/model.ts
    cp bench/results/model.json "$out/" 2>/dev/null
    ;;
  train) step train 120 deno run -A train.ts --minutes 1 --testImages 200 --workers 8 --out /tmp/runs ;;
  *) echo "unknown step $what" ;;
  esac
done
