#!/usr/bin/env bash
# One GPU session in two calls of the lent machine (see docs/gpu.md). The
# SmolLM2 GGUF (98 MB) is over the 64 MiB a call may carry, so it travels in
# two halves, .dev/mA and .dev/mB (make it with `tools/gpu_session.sh split`
# here), in two calls made back to back while the machine is warm:
#   part1: carry .dev/mA + the build: kernel tests, matrix-product bench;
#   part2: carry .dev/mB + the build: join and check the model, then the GPU
#          test suite (engine vs CPU, the audit), the end-to-end bench, the
#          demo audit with its timings, and a per-kernel profile of decode.
# VARIANTS="build/varX ..." (other builds, carried too) are benched beside
# the main one; NCU_GEMM=1 adds a profile of one bf16 product at M = 1.
# Output goes to $OUT (the device tool brings it back; at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
MODEL=/tmp/ra-model/model.gguf
case "${1:-}" in
split)
  rm -rf .dev/mA .dev/mB; mkdir -p .dev/mA .dev/mB
  split -b 49000000 models/SmolLM2-135M-Instruct.Q4_1.gguf .dev/part_
  mv .dev/part_aa .dev/mA/; mv .dev/part_a? .dev/mB/
  ls -l .dev/mA .dev/mB ;;
part1)
  mkdir -p /tmp/ra-model && cp .dev/mA/part_aa /tmp/ra-model/
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  ldd build/repro-audit | grep -E "not found" && echo "MISSING LIBRARIES"
  timeout 240 build/gpu/test_kernels 2>&1 | tee "$OUT/kernels.log" | tail -30
  timeout 240 build/repro-audit bench --no-e2e --runs 30 --quiet 2>&1 | tee "$OUT/bench.log"
  for v in ${VARIANTS:-}; do
    echo "== variant $v"; timeout 120 "$v/repro-audit" bench --no-e2e --kernels bf16@ra --runs 30 --quiet 2>&1 |
      grep bf16@ra | tee -a "$OUT/variants.log"
  done
  if [ "${NCU_GEMM:-0}" = 1 ]; then
    timeout 120 ncu --kernel-name regex:gemm_bf16 --launch-skip 10 --launch-count 1 --section SpeedOfLight \
      --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
      build/repro-audit bench --no-e2e --kernels bf16@ra --m 1 --runs 3 --quiet >"$OUT/ncu-gemm.log" 2>&1
    grep -E "Throughput|Duration|Occupancy|Stall|Warp Cycles|Registers|Block Limit|Eligible|Issued" "$OUT/ncu-gemm.log" | head -40
  fi ;;
part2)
  cat /tmp/ra-model/part_aa .dev/mB/part_a* >"$MODEL"
  want=$(cut -d' ' -f1 data/model.sha256); got=$(sha256sum "$MODEL" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "model SHA-256 $got, want $want"; exit 1; }
  timeout 300 tests/gpu/run.sh build "$MODEL" "$OUT" >"$OUT/test-gpu.log" 2>&1; echo "test-gpu exit $?"
  grep -E "passed|FAIL|bit for bit|greedy|took|Result|every check" "$OUT/test-gpu.log"
  timeout 200 build/repro-audit bench --model "$MODEL" --no-gemm --quiet 2>&1 | tee "$OUT/e2e.log"
  for v in ${VARIANTS:-}; do
    echo "== variant $v"; timeout 100 "$v/repro-audit" bench --model "$MODEL" --no-gemm --kernels bf16@ra --quiet 2>&1 |
      grep bf16@ra | tee -a "$OUT/e2e.log"
  done
  rm -rf /tmp/demo; { time build/repro-audit run --model "$MODEL" --formats q4_1,f32,bf16 --repeats 3 \
    --out /tmp/demo --progress >/dev/null; } 2>"$OUT/demo.err"
  tr '\r' '\n' <"$OUT/demo.err" | grep -E "loaded|digest|written|comparing|real" | tail -20
  if [ "${PROFILE:-1}" = 1 ] && command -v ncu >/dev/null; then
    timeout 150 ncu --launch-skip 3000 --launch-count 260 --metrics gpu__time_duration.sum --print-summary per-kernel \
      build/repro-audit bench --model "$MODEL" --no-gemm --kernels bf16@ra --decode-tokens 64 --quiet \
      >"$OUT/ncu.log" 2>&1
    grep -E "^  [a-z_].*\(|gpu__time_duration|Average|Invocations" "$OUT/ncu.log" | head -60
  fi ;;
*) echo "usage: $0 split|part1|part2"; exit 2 ;;
esac
