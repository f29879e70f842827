#!/usr/bin/env bash
# Submits the nightly array and its collector: FLEET_DIR, MODEL, BASELINE, ...
# as node.sh and collect.sh read them (exported to the jobs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${NODES:=4}"
run="nightly-$(date -u +%Y%m%d-%H%M%S)"
jid=$(FLEET_RUN=$run sbatch --parsable --export=ALL --array=0-$((NODES - 1)) "$here/nightly.sbatch")
FLEET_RUN=$run EXPECT_NODES=$NODES sbatch --parsable --export=ALL --dependency=afterany:"$jid" "$here/collect.sbatch"
echo "submitted $run: nodes job $jid" >&2
