#!/usr/bin/env python3
"""llama.cpp's CPU speed on this machine, the figure `repro-audit bench`
prints ours beside (README, "Speed"): decode tokens/s at batch 1 (greedy, one
token per llama_decode, after the first built-in prompt) and prompt-processing
tokens/s for one synthetic prompt of each length (n_batch 512, as llama.cpp's
tools use), through llama-cpp-python. Each figure is the median of --runs runs.

Usage: tools/llamacpp_bench.py MODEL.gguf [--threads 2] [--decode-tokens 64]
       [--prompt-tokens 256,1024] [--runs 3]
"""
import argparse
import json
import random
import statistics
import time

import llama_cpp
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", default="256,1024")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lengths = [int(x) for x in args.prompt_tokens.split(",")]
    llm = llama_cpp.Llama(model_path=args.model, n_ctx=max(lengths + [512]) + 64, n_batch=512,
                          n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    prompt = json.loads(open("data/prompts.jsonl").readline())["text"]
    ids = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    out = {"llama_cpp_python": llama_cpp.__version__, "threads": args.threads, "decode": {}, "prompt": {}}

    rates = []
    for _ in range(args.runs):
        llm.reset()
        llm.eval(ids)
        t0 = time.perf_counter()
        for _ in range(args.decode_tokens):
            tok = int(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).argmax())
            llm.eval([tok])
        rates.append(args.decode_tokens / (time.perf_counter() - t0))
    out["decode"]["1"] = statistics.median(rates)

    rnd = random.Random(1)
    for n in lengths:
        rates = []
        for _ in range(args.runs):
            llm.reset()
            toks = [rnd.randrange(llm.n_vocab()) for _ in range(n)]
            t0 = time.perf_counter()
            llm.eval(toks)
            rates.append(n / (time.perf_counter() - t0))
        out["prompt"][str(n)] = statistics.median(rates)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
