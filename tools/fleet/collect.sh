#!/usr/bin/env bash
# The collector: after every node of $FLEET_DIR/$FLEET_RUN wrote its bundle,
# one comparison over all of them (report.json/md in the run directory) and
# the gate: each node's bundle checked against BASELINE (one JUnit file per
# node under junit/). Settings (environment): REPRO_AUDIT, FLEET_DIR,
# FLEET_RUN, BASELINE (a bundle; default: node-0 of this run), POLICY
# (optional), EXPECT_NODES (fail when fewer bundles are there).
# Exit: 0 every check passed, 1 a check failed or nodes are missing, 2 bad input.
set -uo pipefail
: "${FLEET_DIR:?collect.sh: set FLEET_DIR}"
ra=${REPRO_AUDIT:-repro-audit}
run_dir="$FLEET_DIR/${FLEET_RUN:-$(date -u +%Y-%m-%d)}"
shopt -s nullglob extglob
nodes=("$run_dir"/node-+([0-9]))
shopt -u nullglob
if [ ${#nodes[@]} -eq 0 ]; then echo "collect.sh: no node bundles in $run_dir" >&2; exit 2; fi
rc=0
if [ -n "${EXPECT_NODES:-}" ] && [ ${#nodes[@]} -lt "$EXPECT_NODES" ]; then
  echo "collect.sh: ${#nodes[@]} of $EXPECT_NODES node bundles in $run_dir" >&2; rc=1
fi
baseline=${BASELINE:-${nodes[0]}}
echo "collect.sh: ${#nodes[@]} bundles, baseline $baseline" >&2
"$ra" compare --json "$run_dir/report.json" --md "$run_dir/report.md" --html "$run_dir/report.html" "${nodes[@]}" >"$run_dir/compare.txt"
c=$?
[ $c -eq 2 ] && { cat "$run_dir/compare.txt"; exit 2; }
[ $c -ne 0 ] && rc=1
mkdir -p "$run_dir/junit"
for n in "${nodes[@]}"; do
  [ "$n" = "$baseline" ] && continue
  policy=(); [ -n "${POLICY:-}" ] && policy=(--policy "$POLICY")
  "$ra" check --quiet --baseline "$baseline" "$n" "${policy[@]}" --junit "$run_dir/junit/$(basename "$n").xml"
  c=$?
  [ $c -eq 2 ] && exit 2
  [ $c -ne 0 ] && rc=1
done
echo "collect.sh: $( [ $rc -eq 0 ] && echo passed || echo FAILED ); reports in $run_dir" >&2
exit $rc
