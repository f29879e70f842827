#!/usr/bin/env bash
# GPU tests (`make test-gpu`; run on a machine with a CUDA GPU):
#   1. every kernel against its CPU reference, run-to-run and batch invariance
#      (the quantized ones too: test_qkernels);
#   2. the CUDA engine against the CPU engine on the real model;
#   3. an end-to-end audit: f32@ra, bf16@ra, bf16@cublas, bf16@cublas-bi,
#      3 repeats plus the batch-composition scenario, compared with the CPU
#      engine's bundle and verified.
# usage: run.sh BUILD_DIR MODEL [OUT_DIR]   (OUT_DIR keeps the bundles' reports)
set -uo pipefail
B=$1; MODEL=$2; KEEP=${3:-}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail=0
step() { echo; echo "== $*"; }

step "kernels"
"$B/gpu/test_kernels" || fail=1
step "quantized kernels"
"$B/gpu/test_qkernels" || fail=1
step "engine vs CPU"
"$B/gpu/test_engine" "$MODEL" || fail=1

step "audit on the GPU: 3 repeats + batch compositions"
start=$(date +%s.%N)
"$B/repro-audit" run --model "$MODEL" --formats f32@ra,bf16@ra,bf16@cublas,bf16@cublas-bi --repeats 3 \
  --scenarios batch --out "$T/gpu" --quiet || fail=1
echo "audit took $(awk "BEGIN{print $(date +%s.%N) - $start}") s"
"$B/repro-audit" compare "$T/gpu"; rc=$?
[ $rc -eq 0 ] || { echo "FAIL: compare of the GPU bundle exited $rc"; fail=1; }
"$B/repro-audit" verify "$T/gpu" >/dev/null || { echo "FAIL: verify of the GPU bundle"; fail=1; }

step "the CPU engine's bundle beside it"
"$B/repro-audit" run --model "$MODEL" --formats f32@cpu,bf16@cpu --repeats 1 --out "$T/cpu" --quiet || fail=1
"$B/repro-audit" compare "$T/gpu" "$T/cpu" || { echo "FAIL: compare GPU + CPU"; fail=1; }

step "the demo audit (q4_1, f32, bf16; 3 repeats) with the GPU present"
start=$(date +%s.%N)
"$B/repro-audit" run --model "$MODEL" --formats q4_1,f32,bf16 --repeats 3 --out "$T/demo" --quiet || fail=1
echo "demo audit took $(awk "BEGIN{print $(date +%s.%N) - $start}") s, loading included"
"$B/repro-audit" compare "$T/demo" || fail=1

if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  [ -d "$T/gpu" ] && cp "$T/gpu/manifest.json" "$KEEP/gpu-manifest.json" && cp "$T/gpu/report.md" "$KEEP/gpu-report.md"
  [ -d "$T/demo" ] && cp "$T/demo/report.md" "$KEEP/demo-report.md"
fi
echo
[ $fail -eq 0 ] && echo "test-gpu: every check passed" || echo "test-gpu: FAILED"
exit $fail
