#!/usr/bin/env bash
# End-to-end tests of the CLI on the real model.
# Usage: run.sh BIN ASAN_BIN MODEL [TOKENIZER_TEST]  (the last: build/e2e/test_tokenizer_model)
set -uo pipefail
BIN=$1; ASAN=$2; MODEL=$3; TOKTEST=${4:-}
. "$(dirname "$0")/lib.sh"
contains() { if grep -q -- "$2" "$1"; then ok; else bad "$3: '$2' not in $(basename "$1")"; sed 's/^/    /' "$1" | head -8; fi; }

# --- usage and help ---
expect_rc 0 "help" -- "$BIN" --help
expect_rc 2 "no command" -- "$BIN"
expect_rc 2 "unknown command" -- "$BIN" frobnicate
for c in run compare verify dump identify check locate inspect tokenize export-hf quantize ppl formats bench; do expect_rc 0 "$c --help" -- "$BIN" $c --help; done
expect_rc 2 "run without --out" -- "$BIN" run --model "$MODEL"
expect_rc 2 "run with bad format" -- "$BIN" run --model "$MODEL" --formats nope --out "$T/x"
contains "$T/err" "unknown format 'nope'" "bad format message"

# --- inspect, on the real file and on malformed ones (under ASan) ---
expect_rc 0 "inspect model" -- "$ASAN" inspect "$MODEL"
contains "$T/out" "llama.block_count" "inspect output"
contains "$T/out" "blk.29.ffn_down.weight" "inspect tensor table"
head -c 100000 "$MODEL" >"$T/trunc.gguf"
expect_rc 2 "inspect truncated" -- "$ASAN" inspect "$T/trunc.gguf"
contains "$T/err" "trunc.gguf" "truncated message names the file"
printf 'GGUX\003\000\000\000' >"$T/magic.gguf"; head -c 4000 "$MODEL" | tail -c +9 >>"$T/magic.gguf"
expect_rc 2 "inspect bad magic" -- "$ASAN" inspect "$T/magic.gguf"
contains "$T/err" "magic" "bad magic message"
expect_rc 2 "inspect missing file" -- "$ASAN" inspect "$T/none.gguf"
expect_rc 2 "run on truncated model" -- "$ASAN" run --model "$T/trunc.gguf" --out "$T/bad" --quiet
[ ! -e "$T/bad" ] && ok || bad "failed run left a bundle"

# --- quantize: llama.cpp's Q4_K_M mix, read back by the GGUF reader and the engine ---
expect_rc 2 "quantize gguf without OUT" -- "$BIN" quantize --format q4_k_m "$MODEL"
contains "$T/err" "quantize needs --format, MODEL and OUT" "quantize gguf usage message"
expect_rc 0 "quantize q4_k_m" -- "$BIN" quantize --format q4_k_m "$MODEL" "$T/q4km.gguf"
expect_rc 0 "inspect q4_k_m" -- "$ASAN" inspect "$T/q4km.gguf"
for want in "166 q5_0" "16 q4_k" "14 q6_k" "15 q8_0" "61 f32"; do
  n=$(grep -c " ${want#* } " "$T/out"); [ "$n" = "${want% *}" ] && ok || bad "q4_k_m file: $n tensors of ${want#* }, want ${want% *}"
done
expect_rc 0 "run on our q4_k_m file" -- "$BIN" run --model "$T/q4km.gguf" --formats q4_k_m@ggml-avx2,q4_k_m@cpu --max-new-tokens 4 --repeats 1 --out "$T/q4km-run" --quiet

# --- tokenize ---
expect_rc 0 "tokenize" -- "$BIN" tokenize "$MODEL" "<|im_start|>user
Hello<|im_end|>"
contains "$T/out" "^\[1, " "tokenize keeps <|im_start|> whole"

# --- a small real audit, twice with different thread counts ---
head -3 data/prompts.jsonl >"$T/p.jsonl"
expect_rc 0 "run A (1 thread)" -- "$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --max-new-tokens 6 --repeats 2 \
  --formats q4_1,f32,bf16 --device cpu --threads 1 --quiet --out "$T/A"
for f in manifest.json report.json report.md traces/q4_1@cpu.r0.ratrace traces/bf16@cpu.r1.ratrace; do
  [ -f "$T/A/$f" ] && ok || bad "bundle lacks $f"
done
ls "$T" | grep -q partial && bad "a .partial directory was left behind" || ok
expect_rc 0 "run B (2 threads)" -- "$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --max-new-tokens 6 --repeats 1 \
  --formats q4_1,f32 --device cpu --threads 2 --quiet --out "$T/B"
expect_rc 2 "run refuses an existing --out" -- "$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --out "$T/B" --quiet
expect_rc 0 "compare A" -- "$BIN" compare "$T/A"
contains "$T/out" "bit-identical" "repeat verdict"
contains "$T/out" "bf16@cpu" "pairwise table"
expect_rc 0 "compare A B (thread count must not change numbers)" -- "$BIN" compare --json "$T/ab.json" --md "$T/ab.md" --html "$T/ab.html" "$T/A" "$T/B"
expect_rc 0 "verify A" -- "$ASAN" verify "$T/A"

# --- batch compositions: every prompt alone, then in batches of 2 and 3 at every rotation ---
expect_rc 0 "run with the batch scenario" -- "$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --max-new-tokens 4 \
  --repeats 1 --formats f32@cpu --scenarios repeat,batch --quiet --out "$T/S"
for sc in batch-alone batch-2-0 batch-2-1 batch-3-0 batch-3-1 batch-3-2; do
  [ -f "$T/S/traces/f32@cpu.$sc.ratrace" ] && ok || bad "batch scenario lacks its $sc trace"
done
expect_rc 0 "compare the batch scenario" -- "$BIN" compare "$T/S"
contains "$T/out" "f32@cpu           7  r0       identical: ok      bit-identical" "batch compositions are bit-identical"
contains "$T/out" "f32@cpu            batch           identical ok   bit-identical (6 runs" "the batch scenario's own verdict"
contains "$T/out" "7 runs, 7 scenarios, on CPU" "the verdict states its scope"
expect_rc 2 "unknown scenario" -- "$BIN" run --model "$MODEL" --scenarios repeat,nope --out "$T/x" --quiet
contains "$T/err" "unknown scenario 'nope'" "unknown scenario message"
expect_rc 2 "unknown kernel" -- "$BIN" run --model "$MODEL" --formats q4_1@ra --out "$T/x" --quiet
contains "$T/err" "format q4_1 has no kernel 'ra'" "unknown kernel message"

# --- GPU kernels on a machine without a GPU: a clear refusal, exit 2 ---
expect_rc 0 "formats" -- "$BIN" formats
contains "$T/out" "bf16@cublas-bi" "formats lists the GPU kernels"
if grep -q "^GPU: none" "$T/out"; then
  expect_rc 2 "f32@ra without a GPU" -- "$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --formats f32@ra --out "$T/g" --quiet
  contains "$T/err" "needs a CUDA GPU" "no-GPU message"
  [ ! -e "$T/g" ] && ok || bad "a failed GPU run left a bundle"
  expect_rc 2 "--device gpu without a GPU" -- "$BIN" run --model "$MODEL" --device gpu --out "$T/g" --quiet
  expect_rc 2 "bench without a GPU" -- "$BIN" bench --no-e2e
  contains "$T/err" "bench:" "bench names itself"
fi

# --- the built-in prompt set: runs from any directory, same bytes as data/prompts.jsonl ---
ABS_MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL"); ABS_BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
expect_rc 0 "run with the built-in prompts, elsewhere" -- sh -c "cd '$T' && '$ABS_BIN' run --model '$ABS_MODEL' --formats q4_1 \
  --max-new-tokens 1 --repeats 1 --quiet --out D"
contains "$T/D/manifest.json" "built-in:data/prompts.jsonl" "manifest names the built-in set"
contains "$T/D/manifest.json" "$(sha256sum data/prompts.jsonl | cut -c1-64)" "built-in set has the file's SHA-256"

# --- report.json v2, report.html, --json -, --base (the statistics' definitions: docs/report-schema.md) ---
[ -f "$T/A/report.html" ] && ok || bad "run wrote no report.html"
python3 tests/html/wellformed.py "$T/A/report.html" "f32@cpu" "Quality against the base" >"$T/wf" && ok || { bad "report.html is not well-formed"; cat "$T/wf"; }
expect_rc 0 "compare --json -" -- "$BIN" compare --quiet --no-write --json - "$T/A"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["version"] == 2 and r["base"] == "f32@cpu", r.get("base")
assert all(p["with_base"] == (p["a"] == "f32@cpu") for p in r["pairs"])' "$T/out" && ok || bad "compare --json - is not report.json v2 with base f32@cpu"
expect_rc 0 "compare --base bf16" -- "$BIN" compare --quiet --no-write --base bf16 "$T/A"
contains "$T/out" "base bf16@cpu; KLD = KL(base || other)" "--base names the base"
expect_rc 2 "compare --base of a format the bundle lacks" -- "$BIN" compare --quiet --no-write --base f16@cpu "$T/A"
contains "$T/err" "--base 'f16@cpu': no such format@kernel" "bad --base message"
expect_rc 0 "compare prints the quantiles" -- "$BIN" compare --quiet --no-write "$T/A"
contains "$T/out" "q4_1@cpu against the base:" "per-pair quantile lines"

# --- dump: JSON lines and CSV that Python reads; the statistics recomputed from it by tools/check_stats.py ---
expect_rc 0 "dump jsonl" -- "$ASAN" dump "$T/A"
python3 - "$T/out" "$T/A/manifest.json" <<'PY' && ok || bad "dump jsonl does not load in Python's json module"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
m = json.load(open(sys.argv[2]))
assert len(rows) == sum(t["steps"] for t in m["traces"]), (len(rows), sum(t["steps"] for t in m["traces"]))
r = rows[0]
assert {"format", "kernel", "seq", "step", "token", "logprob", "topk_ids", "topk_logprobs", "step_hash", "trace_digest"} <= set(r)
assert r["trace_digest"] == m["traces"][0]["digest"] and len(r["topk_ids"]) == m["settings"]["top_k"]
PY
expect_rc 0 "dump csv" -- "$ASAN" dump --format csv "$T/A/traces/f32@cpu.r0.ratrace"
python3 -c 'import csv, sys; rows = list(csv.DictReader(open(sys.argv[1]))); assert len(rows) == 18 and rows[0]["format"] == "f32", rows[:1]' "$T/out" \
  && ok || bad "dump csv does not load in Python's csv module"
expect_rc 2 "dump --format xml" -- "$BIN" dump --format xml "$T/A"
contains "$T/err" "unknown dump format 'xml'" "bad dump format message"
expect_rc 2 "dump --full --format csv" -- "$BIN" dump --full --format csv "$T/A"
expect_rc 2 "dump of a missing file" -- "$BIN" dump "$T/none.ratrace"
"$BIN" dump --full "$T/A" >"$T/A.jsonl" 2>/dev/null && python3 tools/check_stats.py "$T/A.jsonl" "$T/A/report.json" >"$T/cs" 2>&1 \
  && ok || { bad "tools/check_stats.py does not agree with report.json"; tail -5 "$T/cs"; }
rm -f "$T/A.jsonl"

# --- identify: bit-exact first, else nearest by mean KL with the margin ---
expect_rc 0 "identify a repeat" -- "$ASAN" identify "$T/A/traces/bf16@cpu.r1.ratrace" --against "$T/A"
contains "$T/out" "bit-exact: the trace digest equals that of bf16@cpu" "identify names the bit-exact format@kernel"
expect_rc 0 "identify a format the bundle lacks" -- "$ASAN" identify "$T/A/traces/bf16@cpu.r0.ratrace" --against "$T/B"
contains "$T/out" "most likely: f32@cpu, mean KL .*runner-up q4_1@cpu at .*margin" "identify names the nearest and the margin"
expect_rc 2 "identify against a bundle of other prompts" -- "$BIN" identify "$T/A/traces/f32@cpu.r0.ratrace" --against "$T/D"
contains "$T/err" "different prompts\|number of sequences" "other prompts message"
expect_rc 2 "identify without --against" -- "$BIN" identify "$T/A/traces/f32@cpu.r0.ratrace"

# --- verify says what it checked ---
expect_rc 0 "verify A (what was checked)" -- "$BIN" verify "$T/A"
contains "$T/out" "file sha256 [0-9a-f]\{64\}" "verify prints each file's SHA-256"
contains "$T/out" "18 step hashes recomputed from stored log-prob vectors" "verify says which hashes it recomputed"
contains "$T/out" "not checked: that the model gives these numbers" "verify says what it does not check"

# --- the model as an HF checkpoint directory: export-hf, then the same numbers and ids as the GGUF ---
expect_rc 0 "export-hf" -- "$BIN" export-hf "$MODEL" "$T/hf"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -f "$T/hf/$f" ] && ok || bad "export-hf lacks $f"
done
expect_rc 0 "inspect the HF directory" -- "$ASAN" inspect "$T/hf"
contains "$T/out" "model.layers.29.mlp.down_proj.weight" "inspect HF tensor table"
contains "$T/out" "gpt2/smollm, 49152 tokens" "inspect HF tokenizer"
TEXT=$'<|im_start|>user\nHello 2024, caf\u00e9!<|im_end|>'
expect_rc 0 "tokenize GGUF" -- "$BIN" tokenize "$MODEL" "$TEXT"; cp "$T/out" "$T/ids.gguf"
expect_rc 0 "tokenize HF directory" -- "$ASAN" tokenize "$T/hf" "$TEXT"
cmp -s "$T/out" "$T/ids.gguf" && ok || bad "tokenizer.json gives other ids than the GGUF: $(cat "$T/out") vs $(cat "$T/ids.gguf")"
if [ -n "$TOKTEST" ]; then
  "$TOKTEST" "$T/hf" >"$T/tok.out" 2>&1 && ok || { bad "the HF tokenizer fails the tokenizer tests"; tail -5 "$T/tok.out"; }
fi
expect_rc 0 "run the HF directory" -- "$BIN" run --model "$T/hf" --prompts "$T/p.jsonl" --max-new-tokens 6 --repeats 1 \
  --formats f32,bf16 --device cpu --quiet --out "$T/H"
python3 - "$T/A/manifest.json" "$T/H/manifest.json" >"$T/cmp" 2>&1 <<'PY' && ok || { bad "HF directory run differs from the GGUF run"; cat "$T/cmp"; }
import json, sys
a, h = (json.load(open(p)) for p in sys.argv[1:3])
dig = lambda m, f: [t["digest"] for t in m["traces"] if t["format"] == f and t["repeat"] == 0][0]
for f in ("f32", "bf16"):
    assert dig(a, f) == dig(h, f), f"{f}: {dig(a, f)[:16]} (GGUF) vs {dig(h, f)[:16]} (HF)"
assert a["tokenizer"] == h["tokenizer"], "tokenizer digests differ"
assert h["model"]["files"][0]["kind"] == "directory" and len(h["model"]["files"]) == 5, h["model"]["files"]
PY
mkdir -p "$T/bad" && cp "$T/hf/config.json" "$T/hf/tokenizer.json" "$T/bad/"
head -c 5000 "$T/hf/model.safetensors" >"$T/bad/model.safetensors"
expect_rc 2 "a truncated model.safetensors" -- "$ASAN" inspect "$T/bad"
contains "$T/err" "bad/model.safetensors" "truncated safetensors message names the file"
rm "$T/bad/model.safetensors"
echo '{"weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}' >"$T/bad/model.safetensors.index.json"
expect_rc 2 "a missing shard" -- "$ASAN" inspect "$T/bad"
contains "$T/err" "model-00001-of-00002.safetensors" "missing shard message names the shard"
sed -i 's/"hidden_size":\t576/"hidden_size":\t"576"/' "$T/bad/config.json"
expect_rc 2 "config.json with a field of the wrong type" -- "$ASAN" inspect "$T/bad"
contains "$T/err" "hidden_size is a string" "wrong-type message names the field"

# --- tampering: verify and compare must notice ---
cp -r "$T/A" "$T/C"
python3 - "$T/C/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
t = [t for t in m["traces"] if t["format"] == "f32" and t["repeat"] == 1][0]
t["digest"] = "00" * 32
json.dump(m, open(sys.argv[1], "w"))
PY
expect_rc 1 "verify notices a changed digest" -- "$ASAN" verify "$T/C"
f="$T/C/traces/q4_1@cpu.r1.ratrace"; sz=$(stat -c %s "$f")
printf '\xff' | dd of="$f" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
expect_rc 1 "verify notices a flipped byte" -- "$ASAN" verify "$T/C"

echo "e2e: $pass passed, $fail failed"
[ $fail -eq 0 ]
