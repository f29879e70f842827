#!/bin/sh
# The cross-format audit of SmolLM2 on the CPU (README, "Cross-format audit"):
# every format derived from the GGUF (cached under runs/cache), 10 prompts x 32
# tokens, 2 repeats; then perplexity over CHUNKS x 256 tokens of the evaluation
# text (2 by default; 8 for the full 2048 tokens, about 7 minutes a format on
# a loaded 2-core machine). awq-cal is quantized once with `quantize` and scored from
# its checkpoint directory.
set -eu
BIN=${BIN:-build/repro-audit}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${OUT:-runs/cross-format}
CHUNKS=${CHUNKS:-2}
FORMATS=bf16,q4_1,awq,gptq,gptq-act,gptq-cal,gptq-cal-act,w4a16,marlin,fp8,fp8-block,fp8-w8a8,nvfp4,mxfp4
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
"$BIN" run --model "$MODEL" --formats "$FORMATS" --device cpu --repeats 2 --max-new-tokens 32 \
  --cache-dir runs/cache --out "$OUT" --quiet
"$BIN" compare "$OUT"
"$BIN" ppl --model "$MODEL" --formats "$FORMATS" --chunks "$CHUNKS" --ctx 256 --cache-dir runs/cache \
  --json "$OUT.ppl.json" --md "$OUT.ppl.md"
[ -d runs/awq-cal ] || "$BIN" quantize --model "$MODEL" --format awq-cal --out runs/awq-cal
"$BIN" ppl --model runs/awq-cal --formats awq-cal --chunks "$CHUNKS" --ctx 256 \
  --json runs/awq-cal.ppl.json --md runs/awq-cal.ppl.md
