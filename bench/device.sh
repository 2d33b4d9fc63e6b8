#!/usr/bin/env bash
# Everything a lent NVIDIA machine checks and times, in one go (prepare with bench/device_pack.sh,
# carry .gpu). The lease is short and a fresh machine takes minutes to start, so this is one call
# with one deadline (BUDGET seconds, default 540): each step gets its own limit, cut to what is
# left, and the steps run most-wanted first. Step logs come back as $OUT/<step>.log (the device
# tool returns at most 8 files), the JSON results and the tuned-kernel cache as $OUT/results.tar.
#   bash bench/device.sh [step ...]   steps: torch matmul variants bench model train tests
#                                     (default: all but tests)
set -uo pipefail
out=${OUT:-/tmp/device-out}
mkdir -p "$out"
deadline=$(($(date +%s) + ${BUDGET:-540}))
if [ ! -d node_modules ]; then mkdir node_modules && tar -C node_modules -xJf .gpu/node_modules.tar.xz; fi
# shellcheck source=/dev/null
source .gpu/enter.sh >"$out/adapter.txt" 2>&1
if grep -q 'WebGPU adapter: none' "$out/adapter.txt"; then
  # no Vulkan device: try the GL backend through the NVIDIA EGL driver
  export DENO_WEBGPU_BACKEND=gl
  source .gpu/enter.sh >>"$out/adapter.txt" 2>&1
fi
cat "$out/adapter.txt"
export CAPTIONER_CACHE_DIR=/tmp/captioner-cache
results=/tmp/device-results
mkdir -p "$results"
step() { # name, seconds, command...
  local name=$1 secs=$2 left=$((deadline - $(date +%s) - 10))
  shift 2
  ((left < secs)) && secs=$left
  if ((secs < 20)); then
    echo "== $name skipped: the deadline is near"
    return
  fi
  echo "== $name ($(date +%T), ${secs}s at most)"
  timeout "$secs" "$@" >"$out/$name.log" 2>&1
  echo "rc=$?" >>"$out/$name.log"
  grep -v 'XDG_RUNTIME_DIR\|Download\|│\|╭\|╰' "$out/$name.log" | tail -40
}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(torch matmul variants bench model train)
for what in "${steps[@]}"; do
  case "$what" in
  torch) step torch 45 python3 bench/torch_matmul.py 1024 2048 4096 ;;
  matmul) step matmul 120 deno run -A bench/gpu_matmul.ts ;;
  variants) CAPTIONER_TUNE=0 step variants 60 deno test -A --quiet --no-check tests/variants_test.ts ;;
  # transformers.js (the tokenizer parity reference) needs native packages not carried here, and
  # the trimmed node_modules lacks the type declarations: types are checked here, not there
  tests) CAPTIONER_TUNE=0 step tests 200 deno test -A --quiet --no-check --ignore=tests/tokenizer_parity_test.ts tests/ ;;
  bench) step bench 150 deno run -A bench/main.ts --full ;;
  model) step model 60 deno run -A bench/model.ts ;;
  train) step train 100 deno run -A train.ts --minutes 1 --testImages 200 --workers 8 --out /tmp/runs ;;
  *) echo "unknown step $what" ;;
  esac
done
cp bench/results/*.json "$results/" 2>/dev/null
cp -r "$CAPTIONER_CACHE_DIR" "$results/cache" 2>/dev/null
cp /tmp/runs/*/metrics.jsonl "$results/" 2>/dev/null
tar -C "$results" -cf "$out/results.tar" .
echo "== done ($(date +%T))"
