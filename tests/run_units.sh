#!/bin/sh
# Runs each unit test binary, sums their counts, prints "N passed, N failed".
passed=0; failed=0; bad=0
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -v ': [0-9]* passed, 0 failed$' | grep . || true
  line=$(printf '%s\n' "$out" | grep -E ': [0-9]+ passed, [0-9]+ failed$' | tail -1)
  p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\1/')
  f=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed$/\2/')
  [ -n "$p" ] || { echo "$t: exited $rc without a summary"; bad=$((bad+1)); continue; }
  passed=$((passed+p)); failed=$((failed+f))
  [ $rc -eq 0 ] || [ "$f" -gt 0 ] || { echo "$t: exit $rc"; bad=$((bad+1)); }
done
echo "units: $passed passed, $((failed+bad)) failed"
[ $((failed+bad)) -eq 0 ]
