#!/usr/bin/env bash
# One node of the nightly audit: writes its bundle under $FLEET_DIR/$FLEET_RUN/.
# The node's index comes from the scheduler: SLURM_ARRAY_TASK_ID (Slurm job
# array), JOB_COMPLETION_INDEX (Kubernetes indexed Job) or NODE_INDEX.
# Settings (environment): REPRO_AUDIT (the binary; default repro-audit),
# MODEL (required), FLEET_DIR (shared directory; required), FLEET_RUN (default
# today's UTC date), FORMATS, SCENARIOS, PROMPTS, MAX_NEW_TOKENS, REPEATS,
# THREADS, DEVICE. Every node must use the same model, prompts and settings:
# the collector refuses bundles that differ in them (exit 2).
set -euo pipefail
index=${SLURM_ARRAY_TASK_ID:-${JOB_COMPLETION_INDEX:-${NODE_INDEX:-}}}
if ! [[ $index =~ ^[0-9]+$ ]]; then
  echo "node.sh: no node index (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or NODE_INDEX)" >&2; exit 2
fi
: "${MODEL:?node.sh: set MODEL}" "${FLEET_DIR:?node.sh: set FLEET_DIR}"
run_dir="$FLEET_DIR/${FLEET_RUN:-$(date -u +%Y-%m-%d)}"
mkdir -p "$run_dir"
args=(run --model "$MODEL" --out "$run_dir/node-$index" --formats "${FORMATS:-q4_1}"
      --scenarios "${SCENARIOS:-repeat,batch}" --max-new-tokens "${MAX_NEW_TOKENS:-32}" --repeats "${REPEATS:-3}"
      --device "${DEVICE:-auto}" --progress)
[ -n "${PROMPTS:-}" ] && args+=(--prompts "$PROMPTS")
[ -n "${THREADS:-}" ] && args+=(--threads "$THREADS")
echo "node.sh: node $index on $(hostname) -> $run_dir/node-$index" >&2
# The bundle appears only when complete (run writes DIR.partial-* and renames).
exec "${REPRO_AUDIT:-repro-audit}" "${args[@]}"
