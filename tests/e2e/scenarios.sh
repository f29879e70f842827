#!/usr/bin/env bash
# End-to-end tests of the scenarios (run --scenarios), the gate (check) and
# the fleet scripts (tools/fleet), on the real model with 2 prompts x 3 tokens.
# Usage: scenarios.sh BIN ASAN_BIN MODEL (check and locate's input handling runs under ASan)
set -uo pipefail
BIN=$1; ASAN=$2; MODEL=$3
. "$(dirname "$0")/lib.sh"
contains() { if grep -qF -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" | head -12; fi; }
xml_ok() { python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); print(len(d.getElementsByTagName("testcase")), len(d.getElementsByTagName("failure")))' "$1"; }
head -2 data/prompts.jsonl >"$T/p.jsonl"
common=(--model "$MODEL" --prompts "$T/p.jsonl" --max-new-tokens 3 --quiet)

# --- every scenario and the negative control, on two kernels of q4_1 ---
expect_rc 0 "run every scenario" -- "$BIN" run "${common[@]}" --repeats 2 --threads 2 --formats q4_1@cpu,q4_1@ggml-avx2 \
  --scenarios all --processes 2 --batch-max 2 --out "$T/SC"
expect_rc 0 "compare the scenarios" -- "$BIN" compare --no-write "$T/SC"
for fk in "q4_1@cpu          " "q4_1@ggml-avx2    "; do
  contains "$T/out" "  $fk repeat          identical ok   bit-identical (1 run, 6 steps each)" "repeat verdict $fk"
  contains "$T/out" "  $fk batch           identical ok   bit-identical (3 runs" "batch verdict $fk (alone, 2 rotations of 2)"
  contains "$T/out" "  $fk prefill-decode  identical ok   bit-identical (1 run" "prefill-decode verdict $fk"
  contains "$T/out" "  $fk threads         identical ok   bit-identical (1 run" "threads verdict $fk (1 thread against 2)"
  contains "$T/out" "  $fk process         identical ok   bit-identical (2 runs" "process verdict $fk"
  contains "$T/out" "  $fk control         different ok   DIFFERENT: " "the negative control differs ($fk)"
done
contains "$T/out" "  q4_1@ggml-avx2     kernel          none      ok   " "kernel scenario: ggml-avx2 held to cpu, no promise"
contains "$T/out" "on CPU" "verdicts state their scope"
contains "$T/out" "Result: every expectation held." "scenario result"
contains "$T/SC/manifest.json" 'model.layers.0.mlp.down_proj.weight, row 0: block scale d (f16) 0x' "the control's perturbation is recorded"
contains "$T/SC/manifest.json" '"prefill-decode"' "scenarios recorded in the manifest"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sv = r["groups"][0]["scenario_verdicts"]; assert [s["scenario"] for s in sv] == ["repeat", "batch", "prefill-decode", "threads", "control", "process"], sv; c = sv[4]; assert c["expectation"] == "different" and c["pass"] and not c["identical"] and c["divergence"] == {"seq": 0, "step": 0}' \
  "$T/SC/report.json" && ok || bad "report.json scenario_verdicts"
expect_rc 2 "prefill-decode needs generate mode" -- "$BIN" run "${common[@]}" --mode score --scenarios prefill-decode --out "$T/x"
contains "$T/err" "prefill-decode scenario needs --mode generate" "prefill-decode message"
expect_rc 2 "bad --perturb" -- "$BIN" run "${common[@]}" --scenarios control --perturb 0:nope --out "$T/x"
contains "$T/err" "is not LAYER:TENSOR" "perturb message"
expect_rc 2 "--perturb past the last layer" -- "$BIN" run "${common[@]}" --formats q4_1@cpu --scenarios control --perturb 99:q_proj --out "$T/x"
contains "$T/err" "layer 99, but the model has 30 layers" "layer message"
[ ! -e "$T/x" ] && ok || bad "a failed run left a bundle"

# --- check: the gate against the scenario bundle as baseline ---
expect_rc 0 "run R" -- "$BIN" run "${common[@]}" --repeats 1 --threads 1 --formats q4_1@cpu,q4_1@ggml-avx2 --out "$T/R"
expect_rc 0 "check passes against its own baseline" -- "$ASAN" check --baseline "$T/SC" "$T/R" --junit "$T/pass.xml" --json "$T/pass.json"
contains "$T/out" "13 test cases, 0 failed" "check summary"
# 6 scenarios of q4_1@cpu, and of q4_1@ggml-avx2 with kernel 7
[ "$(xml_ok "$T/pass.xml")" = "13 0" ] && ok || bad "pass.xml: 13 testcases, no failure ($(xml_ok "$T/pass.xml"))"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["pass"] and r["tests"] == 13' "$T/pass.json" && ok || bad "check --json"
# A changed format: every run with one weight one ulp off (the numbers), or another format (the coverage).
expect_rc 0 "run P (planted difference)" -- "$BIN" run "${common[@]}" --repeats 1 --formats q4_1@cpu,q4_1@ggml-avx2 --plant 0:down_proj --out "$T/P"
expect_rc 1 "check fails on changed numbers" -- "$ASAN" check --baseline "$T/SC" "$T/P" --junit "$T/fail.xml"
contains "$T/out" "FAIL q4_1@cpu           repeat" "the failing case is named"
[ "$(xml_ok "$T/fail.xml")" = "13 2" ] && ok || bad "fail.xml: 13 testcases, 2 failures ($(xml_ok "$T/fail.xml"))"
contains "$T/fail.xml" 'first B2:r0 at seq 0 step 0' "the JUnit failure gives the first divergence"
expect_rc 0 "check a bundle against itself" -- "$ASAN" check --baseline "$T/SC" "$T/SC" --quiet
odd="$T/odd <&\"'> $(printf '\001\377')"
cp -r "$T/P" "$odd"
expect_rc 1 "check a bundle whose name holds markup and bytes that are not UTF-8" -- "$ASAN" check --baseline "$T/SC" "$odd" --junit "$T/odd.xml"
[ "$(xml_ok "$T/odd.xml")" = "13 2" ] && ok || bad "odd.xml is well-formed XML ($(xml_ok "$T/odd.xml" 2>&1 | tail -1))"
expect_rc 0 "run F (another format)" -- "$BIN" run "${common[@]}" --repeats 1 --formats f32@cpu --out "$T/F"
expect_rc 1 "check fails on another format" -- "$ASAN" check --baseline "$T/SC" "$T/F" --junit "$T/cov.xml"
contains "$T/cov.xml" "in the baseline but missing from the run" "coverage failure"
# Policies: bounds that hold, bounds that do not, malformed files.
pol() { printf '{"schema": "repro-audit.policy", "version": 1, "rules": %s}' "$1" >"$T/pol.json"; }
pol '{"q4_1@cpu": {"expect": "within", "kl_max": 0.1, "top1_min": 0.5}, "q4_1@ggml-avx2": {"expect": "within", "max_abs_diff": 10}}'
expect_rc 0 "a loose policy passes the planted difference" -- "$ASAN" check --baseline "$T/SC" "$T/P" --policy "$T/pol.json"
pol '{"*": {"expect": "within", "kl_max": 1e-12}}'
expect_rc 1 "a tight policy fails it" -- "$ASAN" check --baseline "$T/SC" "$T/P" --policy "$T/pol.json"
contains "$T/out" "> 1e-12" "the failed bound is printed"
pol '{"*:control": {"expect": "identical"}}'
expect_rc 1 "a control held to identical fails (the gate can fail)" -- "$ASAN" check --baseline "$T/SC" "$T/R" --policy "$T/pol.json"
pol '{"*": {"expect": "identical"}, "*": {"expect": "ignore"}}'
expect_rc 2 "duplicate key in a policy" -- "$ASAN" check --baseline "$T/SC" "$T/R" --policy "$T/pol.json"
contains "$T/err" "pol.json: duplicate key" "duplicate key message names the file"
pol '{"q4_1@cpu": {"expect": "within"}}'
expect_rc 2 "within without a bound" -- "$ASAN" check --baseline "$T/SC" "$T/R" --policy "$T/pol.json"
contains "$T/err" '"within" needs kl_max' "within message"
printf '{"schema": "repro-audit.policy", "version": 1, "rules": {' >"$T/pol.json"
expect_rc 2 "truncated policy" -- "$ASAN" check --baseline "$T/SC" "$T/R" --policy "$T/pol.json"
expect_rc 2 "missing policy" -- "$ASAN" check --baseline "$T/SC" "$T/R" --policy "$T/none.json"
expect_rc 2 "JUnit path in a missing directory" -- "$ASAN" check --baseline "$T/SC" "$T/R" --junit "$T/no/dir/j.xml"
expect_rc 0 "run O (the built-in prompts)" -- "$BIN" run --model "$MODEL" --max-new-tokens 3 --repeats 1 --formats q4_1@cpu --quiet --out "$T/O"
expect_rc 2 "check refuses bundles of other prompts" -- "$ASAN" check --baseline "$T/SC" "$T/O"
contains "$T/err" "differ in prompt set" "incomparable bundles message"
expect_rc 2 "check without --baseline" -- "$ASAN" check "$T/R"
expect_rc 2 "check of a missing bundle" -- "$ASAN" check --baseline "$T/SC" "$T/none"

# --- locate: a planted difference found at its layer and op ---
expect_rc 0 "locate the control's weight" -- "$BIN" locate "$T/SC" --pair q4_1@cpu,q4_1@cpu:control-ulp --quiet
contains "$T/out" "first difference: step 0 (the prompt pass), layer 0, mlp.down_proj output (12 op outputs identical before it)" "locate names layer 0, mlp.down_proj"
contains "$T/out" "re-run B: q4_1@cpu control-ulp (0:down_proj one ulp off), reproduces its trace: yes" "the re-run reproduces the control's trace"
expect_rc 0 "run a control in layer 3" -- "$BIN" run "${common[@]}" --repeats 1 --formats q4_1@cpu --scenarios control --perturb 3:up_proj --out "$T/L"
expect_rc 0 "locate it" -- "$BIN" locate "$T/L" --pair q4_1@cpu,q4_1@cpu:control-ulp --quiet
contains "$T/out" ", layer 3, mlp.up_proj output" "locate names layer 3, mlp.up_proj"
expect_rc 0 "locate two bit-identical runs" -- "$BIN" locate "$T/SC" --pair q4_1@cpu,q4_1@cpu:batch-2-1 --quiet
contains "$T/out" "bit-identical: nothing to locate" "identical runs"
expect_rc 2 "locate an unknown run" -- "$ASAN" locate "$T/SC" --pair q4_1@cpu,nope@cpu --quiet
contains "$T/err" "has no run 'nope@cpu'" "unknown run message"
expect_rc 2 "locate without --pair" -- "$ASAN" locate "$T/SC"
cp "$MODEL" "$T/other.gguf"; printf '\x5a' | dd of="$T/other.gguf" bs=1 seek=$(( $(stat -c %s "$MODEL") - 100 )) conv=notrunc 2>/dev/null
expect_rc 2 "locate with another model" -- "$BIN" locate "$T/SC" --pair q4_1@cpu,q4_1@cpu:control-ulp --model "$T/other.gguf" --quiet
contains "$T/err" "is not the model" "another model message"
expect_rc 0 "locate --help" -- "$BIN" locate --help

# --- the fleet scripts, run locally: 2 "nodes" (Slurm and Kubernetes indexes), then the collector ---
fleet=(env REPRO_AUDIT="$BIN" MODEL="$MODEL" FLEET_DIR="$T/fleet" FLEET_RUN=n1 PROMPTS="$T/p.jsonl" MAX_NEW_TOKENS=3 REPEATS=1 \
       FORMATS=q4_1@cpu SCENARIOS=repeat,batch THREADS=1)
expect_rc 0 "node 0 (Slurm array task)" -- "${fleet[@]}" SLURM_ARRAY_TASK_ID=0 tools/fleet/node.sh
expect_rc 0 "node 1 (Kubernetes indexed Job)" -- "${fleet[@]}" JOB_COMPLETION_INDEX=1 tools/fleet/node.sh
expect_rc 2 "a node without an index" -- "${fleet[@]}" tools/fleet/node.sh
expect_rc 0 "collector" -- env REPRO_AUDIT="$BIN" FLEET_DIR="$T/fleet" FLEET_RUN=n1 EXPECT_NODES=2 tools/fleet/collect.sh
[ -f "$T/fleet/n1/report.json" ] && [ "$(xml_ok "$T/fleet/n1/junit/node-1.xml")" = "2 0" ] && ok || bad "collector outputs"
expect_rc 1 "collector with a node missing" -- env REPRO_AUDIT="$BIN" FLEET_DIR="$T/fleet" FLEET_RUN=n1 EXPECT_NODES=3 tools/fleet/collect.sh
expect_rc 1 "collector against a baseline the nodes do not match" -- env REPRO_AUDIT="$BIN" FLEET_DIR="$T/fleet" FLEET_RUN=n1 BASELINE="$T/SC" tools/fleet/collect.sh
bash -n tools/fleet/nightly.sbatch && grep -q '^#SBATCH --array=' tools/fleet/nightly.sbatch && ok || bad "nightly.sbatch"
python3 - tools/fleet/k8s/nightly-job.yaml tools/fleet/k8s/collect-job.yaml <<'PY' && ok || bad "Kubernetes manifests"
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
assert job["spec"]["completions"] == job["spec"]["parallelism"]
c = job["spec"]["template"]["spec"]["containers"][0]
assert c["command"][0].endswith("tools/fleet/node.sh") and c["resources"]["limits"]["nvidia.com/gpu"] == 1
col = yaml.safe_load(open(sys.argv[2]))
assert col["spec"]["template"]["spec"]["containers"][0]["command"][0].endswith("tools/fleet/collect.sh")
PY

echo "scenarios: $pass passed, $fail failed"
[ $fail -eq 0 ]
