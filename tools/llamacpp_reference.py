#!/usr/bin/env python3
"""Greedy continuations and their log-probs from llama.cpp itself, the
reference for the `ggml-avx2` kernel (tests/e2e/test_llamacpp_fixture.c).

llama.cpp runs on the CPU through llama-cpp-python (built from source, once,
outside the repository: `pip install llama-cpp-python==0.3.36` takes about 25
minutes on 2 cores), with the settings whose arithmetic the kernel reproduces:
one token per llama_decode (n_batch = 1: ggml's single-token path; prompt
batches would go through llamafile's tinyBLAS instead), a float32 KV cache,
flash attention off, a context that is a multiple of 256 cells. Each prompt
gets a fresh context, so its KV cells hold positions in order.

For every prompt: llama.cpp's own token ids (special tokens parsed), then
NEW_TOKENS greedy steps; each step records the chosen token and its log-prob,
log_softmax of llama.cpp's float32 logits computed in float64.

With --quantize FTYPE (q8_0, q4_0, ...), MODEL is first requantized by
llama.cpp's own quantize tool (llama_model_quantize, as
tools/llamacpp_quant_digests.py does) and that file is run: the reference for
the format our engine derives from MODEL with the same rule.

With --no-repack llama.cpp loads the weights without its CPU "extra buffer
types" (llama_model_params.use_extra_bufts = false): on an AVX2 machine ggml
otherwise repacks Q4_0 and Q4_K matrices whose row count is a multiple of 8
into interleaved 8x8 layouts with kernels of their own (ggml_gemv_q4_K_8x8_q8_K),
and the reference is then that kernel, not ggml_vec_dot_q4_K_q8_K.

With --prompts-limit N only the first N prompts are run (a quick check).

Usage: tools/llamacpp_reference.py MODEL.gguf PROMPTS.jsonl OUT.json [--quantize FTYPE]
       [--no-repack] [--new-tokens 40] [--threads 2]
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import llama_cpp


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def log_softmax(logits):
    x = logits.astype(np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def run_prompt(args, text):
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=args.ctx, n_batch=1, n_ubatch=1, n_threads=args.threads,
                          n_threads_batch=args.threads, flash_attn=False, type_k=0, type_v=0, logits_all=False,
                          verbose=False)
    ids = llm.tokenize(text.encode(), add_bos=True, special=True)
    n_vocab = llm.n_vocab()
    llm.eval(ids)
    tokens, logprobs = [], []
    for _ in range(args.new_tokens):
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).copy()
        lp = log_softmax(logits)
        tok = int(np.argmax(logits))
        tokens.append(tok)
        logprobs.append(float(lp[tok]))
        llm.eval([tok])
    llm.close()
    return list(ids), tokens, logprobs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--new-tokens", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--quantize", help="requantize MODEL with llama.cpp first (q8_0, q4_0, q4_k_m, ...)")
    ap.add_argument("--no-repack", action="store_true", help="load without weight repacking (use_extra_bufts = false)")
    ap.add_argument("--prompts-limit", type=int, default=0)
    args = ap.parse_args()
    if args.no_repack:
        default_params = llama_cpp.llama_cpp.llama_model_default_params

        def params_without_repack():
            p = default_params()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama_cpp.llama_model_default_params = params_without_repack
    with tempfile.TemporaryDirectory() as tmp:
        source = args.model
        if args.quantize:
            from llamacpp_quant_digests import FTYPES, quantize
            args.model = os.path.join(tmp, args.quantize + ".gguf")
            quantize(source, args.model, FTYPES[args.quantize])
        run(args, source)


def run(args, source):
    assert args.ctx % 256 == 0, "the context must be a multiple of 256 cells (see the kernel's attention note)"

    prompts = [json.loads(line) for line in open(args.prompts) if line.strip()]
    if args.prompts_limit:
        prompts = prompts[:args.prompts_limit]
    out = {
        "tool": "tools/llamacpp_reference.py",
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode(),
        "model_sha256": sha256(source),
        "quantized_by_llama_cpp": args.quantize,
        "settings": {"n_batch": 1, "n_ctx": args.ctx, "kv_cache": "f32", "flash_attn": False,
                     "weight_repacking": not args.no_repack,
                     "threads": args.threads, "new_tokens": args.new_tokens},
        "prompts": [],
    }
    for p in prompts:
        ids, tokens, logprobs = run_prompt(args, p["text"])
        out["prompts"].append({"id": p["id"], "ids": ids, "tokens": tokens, "logprobs": logprobs})
        print(f"{p['id']}: {len(ids)} prompt ids, {len(tokens)} steps", file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
