#!/usr/bin/env bash
# `make test-html`: report.html rendered in headless Chromium (Debian's
# `chromium`): a real audit's report and one of a bundle whose names are
# markup; each must be well-formed, log nothing on the console and show its
# figures. The check is also shown to fail on a page with a script error.
# Usage: run.sh BIN GEN MODEL   (screenshots are kept in $HTML_OUT, default build/html)
set -uo pipefail
BIN=$1; GEN=$2; MODEL=$3
HERE=$(cd "$(dirname "$0")" && pwd); OUT=${HTML_OUT:-build/html}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$OUT"
pass=0; fail=0
ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

head -3 data/prompts.jsonl >"$T/p.jsonl"
"$BIN" run --model "$MODEL" --prompts "$T/p.jsonl" --max-new-tokens 6 --repeats 1 --formats q4_1,f32,bf16 --device cpu \
  --quiet --out "$T/A" || { echo "run failed"; exit 1; }
python3 "$HERE/wellformed.py" "$T/A/report.html" "f32@cpu" && ok || bad "report.html of the audit is not well-formed"
python3 "$HERE/render.py" "$T/A/report.html" "$OUT/audit.png" && ok || bad "report.html of the audit does not render"

evil_model='</svg></table><script>alert(1)</script>'
"$GEN" bundle "$T/E" formats=3 repeats=2 differ=1 fmt0='<img src=x onerror=alert(1)>' name="$evil_model"
"$BIN" compare --quiet --html "$T/E.html" --no-write "$T/E" >/dev/null  # --no-write: nothing is written
[ ! -e "$T/E.html" ] && ok || bad "compare --no-write wrote report.html"
"$BIN" compare --quiet --json "$T/E.json" --md "$T/E.md" --html "$T/E.html" "$T/E" >/dev/null
python3 "$HERE/wellformed.py" "$T/E.html" "$evil_model" "<img src=x onerror=alert(1)>@cpu" && ok \
  || bad "markup in names reaches report.html unescaped"
python3 "$HERE/render.py" "$T/E.html" "$OUT/hostile.png" --no-figures && ok || bad "report.html of the hostile bundle does not render"

printf '<!DOCTYPE html><html><body><p>x</p><script>nosuch()</script></body></html>' >"$T/bad.html"
python3 "$HERE/render.py" "$T/bad.html" "$T/bad.png" >"$T/bad.out" 2>&1
[ $? -eq 1 ] && grep -q "CONSOLE" "$T/bad.out" && grep -q "blank" "$T/bad.out" && ok \
  || { bad "render.py does not catch a console error and a blank page"; cat "$T/bad.out"; }

echo "test-html: $pass passed, $fail failed (screenshots in $OUT)"
[ $fail -eq 0 ]
