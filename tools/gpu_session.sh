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
# ncu_product KERNEL_REGEX FORMAT@KERNEL LOG: one launch of a product at M = 1, profiled.
ncu_product() {
  timeout 120 ncu --kernel-name "regex:$1" --launch-skip 10 --launch-count 1 --section SpeedOfLight \
    --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
    build/repro-audit bench --no-e2e --kernels "$2" --m 1 --runs 3 --quiet >"$3" 2>&1
  grep -E "Throughput|Duration|Occupancy|Stall|Warp Cycles|Registers|Block Limit|Eligible|Issued" "$3" | head -40
}
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
    ncu_product gemm_bf16 bf16@ra "$OUT/ncu-gemm.log"
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
stage)  # only the first half of the model to /tmp, for a part2 or qaudit call right after
  mkdir -p /tmp/ra-model && cp .dev/mA/part_aa /tmp/ra-model/ && ls -l /tmp/ra-model ;;
qaudit)  # (after part1 or stage) the quantized formats end to end: GPU vs CPU, repeats and batch compositions
        # QFORMATS: formats run as @ra and @atomic; QEXTRA: more format@kernel rows; QBENCH: kernels to bench at the model's shapes
  cat /tmp/ra-model/part_aa .dev/mB/part_a* >"$MODEL"
  want=$(cut -d' ' -f1 data/model.sha256); got=$(sha256sum "$MODEL" | cut -d' ' -f1)
  [ "$want" = "$got" ] || { echo "model SHA-256 $got, want $want"; exit 1; }
  if [ -x build/gpu/test_kernels ]; then  # (carried when the call's 64 MiB allow)
    timeout 120 build/gpu/test_kernels >"$OUT/kernels.log" 2>&1; echo "test_kernels exit $?: $(tail -1 "$OUT/kernels.log")"
  fi
  if [ -x build/gpu/test_engine ]; then
    timeout 120 build/gpu/test_engine "$MODEL" >"$OUT/engine.log" 2>&1; echo "test_engine exit $?: $(tail -1 "$OUT/engine.log")"
  fi
  F=${QFORMATS:-gptq,gptq-act,awq,w4a16,fp8,nvfp4,mxfp4}
  G=bf16@ra; C=bf16@cpu
  for f in ${F//,/ }; do G="$G,$f@ra,$f@atomic"; C="$C,$f@cpu"; done
  G="$G${QEXTRA:+,$QEXTRA}"  # other format@kernel rows (fp8-w8a8@cublaslt, ...)
  export RA_CACHE=/tmp/ra-cache
  if [ ! -f /tmp/qcpu/manifest.json ]; then  # (kept from an earlier call while the machine stays warm)
    { time build/repro-audit run --model "$MODEL" --formats "$C" --repeats 1 --cache-dir /tmp/ra-cache \
        --out /tmp/qcpu; } >"$OUT/qcpu.log" 2>&1; echo "cpu run exit $?"; grep -v "^  " "$OUT/qcpu.log" | tail -5
  fi
  rm -rf /tmp/qgpu
  { time build/repro-audit run --model "$MODEL" --formats "$G" --repeats 3 --scenarios batch --cache-dir /tmp/ra-cache \
      --out /tmp/qgpu; } >"$OUT/qgpu.log" 2>&1; echo "gpu run exit $?"; grep -v "^  " "$OUT/qgpu.log" | tail -5
  build/repro-audit compare /tmp/qgpu >"$OUT/qgpu-compare.txt" 2>&1; echo "compare gpu exit $?"
  build/repro-audit compare /tmp/qgpu /tmp/qcpu >"$OUT/qgpu-vs-cpu.txt" 2>&1; echo "compare gpu+cpu exit $?"
  build/repro-audit verify /tmp/qgpu >/dev/null 2>&1; echo "verify gpu exit $?"
  cp /tmp/qgpu/report.md "$OUT/qgpu-report.md" 2>/dev/null; cp /tmp/qgpu/manifest.json "$OUT/qgpu-manifest.json" 2>/dev/null
  head -60 "$OUT/qgpu-compare.txt"
  if [ -n "${QBENCH:-}" ]; then  # the quantized kernels at the model's own shapes (synthetic weights)
    timeout 200 build/repro-audit bench --model "$MODEL" --no-e2e --kernels "$QBENCH" --m 1,16,64 --runs 10 --quiet 2>&1 |
      grep -E "model|kernel|copy" | tee "$OUT/qbench-model.log"
  fi ;;
quant)  # the quantized kernels alone (no model needed): tests, memcheck, bench
  ldd build/repro-audit | grep -E "not found" && echo "MISSING LIBRARIES"
  timeout 200 build/gpu/test_qkernels 2>&1 | tee "$OUT/qkernels.log" | tail -20
  if command -v compute-sanitizer >/dev/null; then
    timeout 200 compute-sanitizer --tool memcheck --print-limit 5 build/gpu/test_qkernels >"$OUT/qmemcheck.log" 2>&1
    tail -3 "$OUT/qmemcheck.log"
  fi
  Q=${QKERNELS:-bf16@cublas,bf16@ra,gptq@ra,gptq@atomic,gptq-act@ra,awq@ra,awq@atomic,w4a16@ra,w4a16@atomic,fp8@ra,fp8@atomic,fp8-block@ra,nvfp4@ra,nvfp4@atomic,mxfp4@ra,mxfp4@atomic}
  timeout 300 build/repro-audit bench --no-e2e --kernels "$Q" --runs 20 --quiet 2>&1 | tee "$OUT/qbench.log"
  if [ "${NCU_Q:-0}" = 1 ]; then
    ncu_product qgemm gptq@ra "$OUT/ncu-q.log"
  fi ;;
*) echo "usage: $0 split|part1|part2|stage|qaudit|quant"; exit 2 ;;
esac
