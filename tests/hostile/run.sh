#!/usr/bin/env bash
# Hostile inputs (issue 11): bundles, traces, manifests, prompt files and GGUFs
# made to hurt the reader. Each case runs the plain binary under `ulimit -v`
# and a timeout, and the ASan+UBSan binary under a timeout and an RSS limit,
# and expects a clean refusal: the exit code, and a message naming the file.
# Large inputs are made here at test time (tests/hostile/gen.c, gguf_patch.py);
# corpus/ holds the small hand-written ones.
# Usage: run.sh BIN ASAN_BIN GEN MODEL
set -uo pipefail
BIN=$1; ASAN=$2; GEN=$3; MODEL=$4
HERE=$(cd "$(dirname "$0")" && pwd); CORPUS=$HERE/corpus
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
MEM_KB=${HOSTILE_MEM_KB:-1048576}    # 1 GiB of address space for the plain binary
LIMIT_S=${HOSTILE_TIMEOUT:-60}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:hard_rss_limit_mb=1024:max_allocation_size_mb=1024:allocator_may_return_null=1
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
show() { sed 's/^/    /' "$1" | head -${2:-5} | cut -c1-200; }

# run_one WHICH ARGS...: runs BIN (limited) or ASAN into $T/out, $T/err; sets rc.
run_one() {
  local which=$1; shift
  if [ "$which" = plain ]; then
    ( ulimit -v "$MEM_KB"; exec timeout -k 5 "$LIMIT_S" "$BIN" "$@" ) >"$T/out" 2>"$T/err"; rc=$?
  else
    timeout -k 5 "$LIMIT_S" "$ASAN" "$@" >"$T/out" 2>"$T/err"; rc=$?
  fi
}
# expect WANT PATTERN DESC -- ARGS...: both binaries (or those in ONLY) exit WANT and print PATTERN
# (grep -E) on stdout or stderr.
expect() {
  local want=$1 pat=$2 desc=$3; shift 4
  for which in ${ONLY:-plain asan}; do
    run_one $which "$@"
    if [ $rc -ne "$want" ]; then bad "$desc ($which): exit $rc, want $want"; show "$T/err"; continue; fi
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$T/out" "$T/err"; then  # no pipe: grep -q may close it early
      bad "$desc ($which): output lacks /$pat/"; show "$T/err"; continue
    fi
    ok
  done
}
# clean FILE DESC: no raw terminal controls (C0 but \t \n, DEL, C1) and valid UTF-8.
clean() {
  if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$1" || LC_ALL=C grep -q $'\xc2[\x80-\x9f]' "$1"; then
    bad "$2: raw control characters in $(basename "$1")"; cat -v "$1" | head -5 | cut -c1-200
  elif ! python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$1" 2>/dev/null; then
    bad "$2: $(basename "$1") is not valid UTF-8"
  else ok; fi
}
# json PYEXPR FILE DESC: the report file parses (strict UTF-8) and PYEXPR over it (as r) holds.
json() {
  if python3 - "$2" "$1" <<'PY' 2>"$T/py"; then ok; else bad "$3"; show "$T/py"; fi
import json, math, sys
r = json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))
def pair(a, b): return [p for p in r["pairs"] if {p["a"], p["b"]} == {a, b}][0]
assert eval(sys.argv[2]), sys.argv[2]
PY
}
manifest_edit() { # manifest_edit DIR PYCODE: m is the manifest (dict), edited in place
  python3 - "$1/manifest.json" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(m, open(sys.argv[1], "w"))
PY
}
sha() { sha256sum "$1" | cut -c1-64; }

B=$T/base
"$GEN" bundle "$B" formats=2 repeats=2 || { echo "gen failed"; exit 1; }
expect 0 "every hash" "base bundle verifies" -- verify "$B"
expect 0 "every expectation held" "base bundle compares" -- compare --no-write "$B"

# --- row 5: symlinks, FIFOs, devices and directories inside a bundle ---
mkdir -p "$T/outside"; cp "$B/traces/f0@cpu.r1.ratrace" "$T/outside/"
cp -r "$B" "$T/lnk"; ln -sf "$T/outside/f0@cpu.r1.ratrace" "$T/lnk/traces/f0@cpu.r1.ratrace"
expect 2 "f0@cpu.r1.ratrace.*symbolic link" "verify refuses a trace that is a symlink out of the bundle" -- verify "$T/lnk"
expect 2 "f0@cpu.r1.ratrace.*symbolic link" "compare refuses a trace that is a symlink" -- compare --no-write "$T/lnk"
expect 2 "f0@cpu.r1.ratrace.*symbolic link" "dump refuses a trace that is a symlink" -- dump "$T/lnk"
cp -r "$B" "$T/zero"; ln -sf /dev/zero "$T/zero/traces/f0@cpu.r1.ratrace"
expect 2 "f0@cpu.r1.ratrace" "verify refuses a trace linked to /dev/zero" -- verify "$T/zero"
cp -r "$B" "$T/fifo"; rm "$T/fifo/traces/f0@cpu.r1.ratrace"; mkfifo "$T/fifo/traces/f0@cpu.r1.ratrace"
expect 2 "f0@cpu.r1.ratrace.*not a regular file" "verify refuses a FIFO trace (and does not block)" -- verify "$T/fifo"
expect 2 "f0@cpu.r1.ratrace.*not a regular file" "compare refuses a FIFO trace" -- compare --no-write "$T/fifo"
cp -r "$B" "$T/tdir"; rm "$T/tdir/traces/f0@cpu.r1.ratrace"; mkdir "$T/tdir/traces/f0@cpu.r1.ratrace"
expect 2 "f0@cpu.r1.ratrace.*not a regular file" "verify refuses a directory as a trace" -- verify "$T/tdir"
cp -r "$B" "$T/ldir"; mv "$T/ldir/traces" "$T/outside/traces"; ln -s "$T/outside/traces" "$T/ldir/traces"
expect 2 "traces.*symbolic link" "verify refuses a traces/ directory that is a symlink" -- verify "$T/ldir"
cp -r "$B" "$T/mzero"; rm "$T/mzero/manifest.json"; ln -s /dev/zero "$T/mzero/manifest.json"
expect 2 "manifest.json.*symbolic link" "verify refuses a manifest linked to /dev/zero" -- verify "$T/mzero"
cp -r "$B" "$T/mfifo"; rm "$T/mfifo/manifest.json"; mkfifo "$T/mfifo/manifest.json"
expect 2 "manifest.json.*not a regular file" "compare refuses a FIFO manifest" -- compare --no-write "$T/mfifo"
cp -r "$B" "$T/mbig"; truncate -s 100M "$T/mbig/manifest.json"
expect 2 "manifest.json.*limit" "verify refuses a manifest over the size limit" -- verify "$T/mbig"

# --- row 3: a small trace that expands to 3 GiB ---
cp -r "$B" "$T/bomb"; "$GEN" bomb "$T/bomb/traces/f0@cpu.r1.ratrace" 3
manifest_edit "$T/bomb" "import hashlib; t = m['traces'][1]; t['sha256'] = hashlib.sha256(open('$T/bomb/traces/f0@cpu.r1.ratrace','rb').read()).hexdigest()"
expect 2 "f0@cpu.r1.ratrace.*(expand|limit)" "verify refuses a zstd bomb" -- verify "$T/bomb"
expect 2 "f0@cpu.r1.ratrace.*(expand|limit)" "compare refuses a zstd bomb" -- compare --no-write "$T/bomb"
expect 2 "f0@cpu.r1.ratrace.*(expand|limit)" "dump refuses a zstd bomb" -- dump "$T/bomb"
expect 2 "f0@cpu.r1.ratrace.*(expand|limit)" "identify refuses a zstd bomb as the trace" -- identify "$T/bomb/traces/f0@cpu.r1.ratrace" --against "$B"

# --- rows 1 and 4: absurd and large trace counts ---
"$GEN" bundle "$T/g300" formats=300 repeats=1 clone=1
expect 2 "g300.*300 format@kernel groups" "compare refuses 300 format groups" -- compare --no-write "$T/g300"
"$GEN" bundle "$T/g65537" formats=65537 repeats=1 shared=1
expect 2 "g65537.*65537 traces" "compare refuses 65,537 traces (pairs would overflow)" -- compare --no-write "$T/g65537"
"$GEN" bundle "$T/same" formats=300 repeats=1 shared=1
expect 2 "same.*two traces name the file" "a manifest naming one file for many traces is refused" -- verify "$T/same"
"$GEN" bundle "$T/g20000" formats=20000 repeats=1 clone=1  # took 303 s and 20.7 GB at 220ce09
expect 2 "g20000.*20000 format@kernel groups" "compare refuses 20,000 format groups quickly" -- compare --no-write "$T/g20000"
"$GEN" bundle "$T/many" formats=4 repeats=5000
# a question of time, not memory safety: the plain binary only
ONLY=plain expect 0 "every expectation held" "compare groups 20,000 traces quickly" -- compare --no-write "$T/many"
ONLY=plain expect 0 "20000 traces" "verify reads 20,000 traces" -- verify "$T/many"

# --- row 17: a bundle of one format (no pairs) under UBSan ---
"$GEN" bundle "$T/one" formats=1 repeats=2
expect 0 "no pairs" "compare of a one-format bundle" -- compare --no-write "$T/one"

# --- row 8: verdicts come from the trace bytes, not the manifest's digests ---
cp -r "$B" "$T/swap"; cp "$B/traces/f1@cpu.r0.ratrace" "$T/swap/traces/f0@cpu.r1.ratrace"
expect 2 "f0@cpu.r1.ratrace.*SHA-256" "compare refuses a trace swapped for another format's" -- compare --no-write "$T/swap"
manifest_edit "$T/swap" "t = m['traces'][1]; t['sha256'] = '$(sha "$T/swap/traces/f0@cpu.r1.ratrace")'"
expect 2 "f0@cpu.r1.ratrace.*(format|digest)" "compare refuses a swapped trace whose SHA-256 was updated" -- compare --no-write "$T/swap"

# --- row 11: duplicate JSON keys (cJSON keeps the first, Python and jq the last) ---
cp -r "$B" "$T/dup"
python3 - "$T/dup/manifest.json" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
i = s.index('"digest":')
j = s.index('"', s.index(':', i) + 2) + 1
s = s[:j] + ',"digest":"' + '0' * 64 + '"' + s[j:]  # first the right digest (cJSON's), last a wrong one (Python's)
open(p, "w").write(s)
PY
expect 2 "manifest.json.*duplicate key \"digest\"" "a manifest with a duplicate key is refused" -- verify "$T/dup"
cp -r "$B" "$T/trail"; printf '{}' >>"$T/trail/manifest.json"
expect 2 "manifest.json.*after the JSON value" "a manifest with trailing data is refused" -- verify "$T/trail"
cp -r "$B" "$T/nul"; sed -i 's/"toy"/"to\\u0000y"/' "$T/nul/manifest.json"
expect 2 "manifest.json.*NUL" "a manifest with a NUL in a string is refused" -- verify "$T/nul"
cp -r "$B" "$T/utf"; sed -i 's/"toy"/"to\xffy"/' "$T/utf/manifest.json"
expect 2 "manifest.json.*UTF-8" "a manifest that is not UTF-8 is refused" -- verify "$T/utf"

# --- row 6: terminal escapes in untrusted strings; Markdown table cells ---
"$GEN" bundle "$T/esc" formats=2 repeats=2 differ=1 fmt0=$'a|b\e[8m' \
  name=$'\e[2K\rResult: every expectation held.\xc2\x9b[8m'
run_one plain compare --json "$T/esc.json" --md "$T/esc.md" "$T/esc"
[ $rc -eq 1 ] && ok || bad "compare of the escape bundle: exit $rc, want 1 (its f0 repeats differ)"
clean "$T/out" "compare stdout"
clean "$T/esc.md" "report.md"
grep -q 'a\\|b' "$T/esc.md" && ok || bad "report.md does not escape | in a table cell"
# report.html: markup in a format name and the model name stays text (tests/html/wellformed.py)
"$GEN" bundle "$T/eschtml" formats=2 repeats=1 fmt0='<img src=x onerror=alert(1)>' name='</svg><script>alert(1)</script>'
run_one plain compare --json "$T/escjs.json" --md "$T/escjs.md" --html "$T/esc.html" "$T/eschtml"
[ $rc -eq 0 ] && ok || { bad "compare of the markup bundle: exit $rc"; show "$T/err"; }
python3 "$HERE/../html/wellformed.py" "$T/esc.html" '</svg><script>alert(1)</script>' '<img src=x onerror=alert(1)>@cpu' >"$T/wf" \
  && ok || { bad "report.html lets markup from a bundle through"; show "$T/wf"; }
cp -r "$B" "$T/escmode"; manifest_edit "$T/escmode" "m['settings']['mode'] = '\x1b[31mevil\x1b[0m'"
run_one plain verify "$T/escmode"; [ $rc -eq 2 ] && ok || bad "bad mode: exit $rc"; clean "$T/err" "error message"
"$GEN" gguf-esc "$T/esc.gguf"
run_one asan inspect "$T/esc.gguf"; [ $rc -eq 0 ] && ok || bad "inspect esc.gguf: exit $rc"
clean "$T/out" "inspect output"

# --- row 12: names cut inside a UTF-8 character ---
"$GEN" bundle "$T/long" formats=2 repeats=1 name="$(python3 -c 'print("é" * 100, end="")')"
expect 0 "" "compare of a long UTF-8 name" -- compare --json "$T/long.json" --md "$T/long.md" "$T/long"
clean "$T/long.json" "report.json with a long name"; clean "$T/long.md" "report.md with a long name"
json 'r["model"]["name"].startswith("é" * 60)' "$T/long.json" "report.json keeps the name's whole characters"

# --- row 9: -inf shared by both runs, NaN at token 0 ---
"$GEN" bundle "$T/nan" formats=3 repeats=1 data=nan
run_one asan compare --json "$T/nan.json" --md "$T/nan.md" "$T/nan"
[ $rc -eq 0 ] && ok || { bad "compare with NaN and -inf: exit $rc"; show "$T/err"; }
json 'abs(pair("f0@cpu", "f1@cpu")["l2_mean"] - 0.5) < 1e-9' "$T/nan.json" "shared -inf: L2 is 0.5, not NaN"
json 'abs(pair("f0@cpu", "f1@cpu")["kl_mean"] - math.exp(-1) * 0.5) < 1e-7' "$T/nan.json" "shared -inf: KL is finite"
json 'pair("f0@cpu", "f2@cpu")["top1_agreement"] == 1' "$T/nan.json" "NaN at token 0: top-1 still agrees"
json 'pair("f0@cpu", "f2@cpu")["nonfinite_values"] == 6' "$T/nan.json" "NaN against a number is counted"
json 'pair("f0@cpu", "f1@cpu")["nonfinite_values"] == 0' "$T/nan.json" "equal NaN and -inf bits are equal"

# --- row 2: planted symlinks at the temporary names of the report files ---
cp -r "$B" "$T/plant"; echo precious >"$T/victim"
sh -c 'for f in report.json report.md report.html; do ln -s "$2" "$1/$f.tmp.$$"; done; exec "$3" compare "$1" >/dev/null' \
  sh "$T/plant" "$T/victim" "$BIN"
[ "$(cat "$T/victim")" = precious ] && ok || bad "compare wrote through a planted symlink"
[ -f "$T/plant/report.json" ] && [ ! -L "$T/plant/report.json" ] && ok || bad "compare did not write report.json"
[ -f "$T/plant/report.html" ] && [ ! -L "$T/plant/report.html" ] && ok || bad "compare did not write report.html"

# --- prompt files (rows 10, 11, 13) ---
for f in "$CORPUS"/prompts/*.jsonl; do
  want=$(sed -n 's/^# expect: //p' "$f" | head -1)
  expect 2 "$(basename "$f").*$want" "prompt file $(basename "$f")" -- tokenize "$MODEL" --prompts "$f"
done
python3 -c 'import json; print(json.dumps({"id": "big", "text": "a" * (32 << 20)}))' >"$T/big.jsonl"
expect 2 "big.jsonl:1.*context length" "a 32 MB prompt is refused quickly" -- tokenize "$MODEL" --prompts "$T/big.jsonl"
python3 -c 'import json; print(json.dumps({"id": "long", "ids": [1] * 9000}))' >"$T/long.jsonl"
expect 2 "long.jsonl:1.*9000 tokens.*context length 8192" "a prompt over the context length" -- tokenize "$MODEL" --prompts "$T/long.jsonl"

# --- run (rows 7, 12, 14, 15, 16), on the real model ---
head -1 "$CORPUS/../../../data/prompts.jsonl" >"$T/p1.jsonl"
runq() { "$BIN" run --prompts "$T/p1.jsonl" --formats q4_1 --repeats 1 --threads 1 --quiet "$@"; }
# row 7: an existing OUT.partial-PID directory is neither reused nor deleted
sh -c 'mkdir "$1.partial-$$" && echo mine >"$1.partial-$$/keep"; exec "$2" run --model "$3" --prompts "$4" --max-new-tokens 1 --quiet --out "$1"' \
  sh "$T/r7" "$BIN" "$MODEL" "$T/long.jsonl" 2>/dev/null
[ -n "$(ls "$T"/r7.partial-[0-9]*/keep 2>/dev/null)" ] && ok || bad "a failed run deleted a directory it did not create"
mkdir "$T/r7victim"
sh -c 'ln -s "$2" "$1.partial-$$"; exec "$3" run --model "$4" --prompts "$5" --formats q4_1 --repeats 1 --max-new-tokens 1 --quiet --out "$1"' \
  sh "$T/r7b" "$T/r7victim" "$BIN" "$MODEL" "$T/p1.jsonl"
[ -z "$(ls "$T/r7victim")" ] && ok || bad "run wrote through a planted OUT.partial-PID symlink"
[ -d "$T/r7b" ] && [ ! -L "$T/r7b" ] && [ -f "$T/r7b/manifest.json" ] && ok || bad "run did not create its own bundle"
# rows 12 and 14: a name with escapes and 140 bytes of two-byte characters; context_length 2^24
python3 "$HERE/gguf_patch.py" "$MODEL" "$T/m.gguf" 'general.name=\x1b]0;pwned\x07'"$(python3 -c 'print("é" * 70, end="")')" \
  llama.context_length=u32:16777216
( ulimit -v 2097152; runq --model "$T/m.gguf" --max-new-tokens 2 --out "$T/r14" --progress ) 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok || { bad "run with context_length 2^24 in 2 GiB: exit $rc"; show "$T/err"; }
tr -d "\r" <"$T/err" >"$T/err.txt"; clean "$T/err.txt" "run progress with an escaped model name"
[ -f "$T/r14/manifest.json" ] && clean "$T/r14/manifest.json" "manifest.json with a long UTF-8 name"
# row 15: a directory created at OUT during the run is not replaced
runq --model "$MODEL" --max-new-tokens 48 --out "$T/r15" 2>"$T/r15.err" & pid=$!
for _ in $(seq 600); do ls -d "$T"/r15.partial-* >/dev/null 2>&1 && break; sleep 0.05; done
mkdir "$T/r15"; wait $pid; rc=$?  # an empty directory: plain rename(2) would replace it
[ $rc -eq 2 ] && grep -q "r15.*exists" "$T/r15.err" && ok || { bad "run replaced a directory created during the run (exit $rc)"; show "$T/r15.err"; }
[ -d "$T/r15" ] && [ -z "$(ls "$T/r15")" ] && ok || bad "the directory created during the run was replaced"
ls -d "$T"/r15.partial-* >/dev/null 2>&1 && bad "run left its .partial directory" || ok
# row 16: the model path swapped during the run: the manifest records the bytes that ran
ln -s "$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")" "$T/model.gguf"
runq --model "$T/model.gguf" --max-new-tokens 48 --out "$T/r16" & pid=$!
for _ in $(seq 600); do ls -d "$T"/r16.partial-* >/dev/null 2>&1 && break; sleep 0.05; done
ln -sfn "$CORPUS/../../data/golden.gguf" "$T/model.gguf"; kill -0 $pid 2>/dev/null; alive=$?; wait $pid; rc=$?
[ $alive -eq 0 ] || echo "note: the run ended before the swap; row 16 not exercised"
[ $rc -eq 0 ] && grep -q "$(sha "$MODEL")" "$T/r16/manifest.json" && ok || bad "manifest does not hold the SHA-256 of the model that ran"

echo "hostile: $pass passed, $fail failed"
[ $fail -eq 0 ]
