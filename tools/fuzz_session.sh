#!/usr/bin/env bash
# Runs every libFuzzer target in parallel on a many-core machine (the lent
# GPU machines have 16 to 128 cores), cores split by weight, and reports per
# target the CPU seconds (user + sys of the fuzzer and its fork-mode workers)
# and the executions. Crashes land in $OUT as crash-NAME-*, to be minimised
# into tests/fuzz/corpus/NAME here. Build the fuzzers here (clang; `make
# build/fuzz/fuzz_X`), carry them and build/lib (libcjson) to the machine.
# usage: fuzz_session.sh FUZZ_DIR SECONDS CORES [NAME=WEIGHT ...]
# (with weights summing to CORES, each weight is that target's core count)
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=$1; SECS=$2; CORES=$3; shift 3
OUT=${OUT:-/tmp/fuzz-out}; mkdir -p "$OUT"
W=/tmp/fuzz-work; rm -rf "$W"; mkdir -p "$W"
# harnesses that write files put them under $TMPDIR: a tmpfs keeps them off the disk
[ -w /dev/shm ] && export TMPDIR=/dev/shm
export LD_LIBRARY_PATH="$PWD/build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
declare -A weight
for b in "$DIR"/fuzz_*; do weight[$(basename "$b")]=1; done
for kv in "$@"; do weight[${kv%%=*}]=${kv#*=}; done
total=0; for n in "${!weight[@]}"; do total=$((total + weight[$n])); done
for n in "${!weight[@]}"; do
  k=$(( CORES * weight[$n] / total )); [ "$k" -lt 1 ] && k=1
  mkdir -p "$W/$n/corpus"
  ( cd "$W/$n" && "$OLDPWD/$DIR/$n" -fork="$k" -max_total_time="$SECS" -artifact_prefix="$OUT/crash-$n-" \
      corpus "$OLDPWD/tests/fuzz/corpus/$n" >log 2>&1; echo "rc $?" >>log; times >cpu ) &
  echo "$n: $k cores"
done
wait
printf '%-20s %8s %12s %10s %s\n' target cores cpu_seconds execs result
for n in $(printf '%s\n' "${!weight[@]}" | sort); do
  k=$(( CORES * weight[$n] / total )); [ "$k" -lt 1 ] && k=1
  # `times`: line 2 is the children's user and sys time, as 0m12.345s
  cpu=$(sed -n 2p "$W/$n/cpu" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }; printf "%.0f", s }')
  execs=$(grep -oE '^#[0-9]+' "$W/$n/log" | tail -1 | tr -d '#')
  res=$(grep -E "^rc " "$W/$n/log" | tail -1)
  printf '%-20s %8s %12s %10s %s\n' "$n" "$k" "$cpu" "${execs:-?}" "$res"
  grep -lE "ERROR: libFuzzer|SUMMARY: (Address|Undefined)" "$W/$n/log" >/dev/null && tail -30 "$W/$n/log" >"$OUT/log-$n.txt"
done
ls "$OUT" | grep crash- | head
