#!/usr/bin/env python3
"""Golden values for the CPU engine, from code we did not write.

Runs on the GPU machine (torch + transformers installed there):
  1. loads `repro-audit export-hf` output with transformers' LlamaForCausalLM
     in float32 on the CPU, eager attention;
  2. tokenizes each prompt text with HF `tokenizers` (a byte-level BPE built
     from the GGUF's vocabulary and merges, pre-split as the model's "smollm"
     pre-tokenizer says: each digit alone, then the GPT-2 byte-level regex), and
     for each prompt greedily
     generates N tokens (EOS ignored), recomputing the whole sequence each step,
     and records each chosen token, its log-probability and the top 5;
  3. if the `gguf` package is importable, also loads the original GGUF through
     transformers' own GGUF loader and reports the max |difference| of every
     tensor against our export (checks our dequantization and Q/K un-permutation),
     and encodes the prompt texts with transformers' GGUF tokenizer;
  4. if a GPU is present, repeats step 2 on it (float32, TF32 off) and reports
     how far it lands from the CPU reference.
Writes one JSON fixture.
"""
import argparse, json, os, platform, sys, time

import torch
import transformers
from transformers import LlamaForCausalLM

from hf_gguf_tokenizer import hf_tokenizer  # tools/, next to this script


def greedy(model, prompt_ids, n_new, device):
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    steps = []
    with torch.no_grad():
        for _ in range(n_new):
            logits = model(ids).logits[0, -1].float()
            lp = torch.log_softmax(logits, dim=-1)
            tok = int(torch.argmax(lp))
            top = torch.topk(lp, 5)
            steps.append({"token": tok, "logprob": float(lp[tok]),
                          "top5_ids": [int(i) for i in top.indices], "top5_logprobs": [float(v) for v in top.values]})
            ids = torch.cat([ids, torch.tensor([[tok]], device=device)], dim=1)
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="directory written by repro-audit export-hf")
    ap.add_argument("--prompts", required=True, help="the prompt texts (JSONL: id, text)")
    ap.add_argument("--gguf", required=True, help="the original GGUF: its tokenizer, and the transformers GGUF-loader cross-check")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tok = hf_tokenizer(a.gguf)
    prompts = [json.loads(l) for l in open(a.prompts) if l.strip()]
    for p in prompts:
        p["ids"] = tok.encode(p["text"], add_special_tokens=False).ids
        assert tok.decode(p["ids"], skip_special_tokens=False) == p["text"], p["id"]
    model = LlamaForCausalLM.from_pretrained(a.export, torch_dtype=torch.float32, attn_implementation="eager").eval()

    import tokenizers
    out = {"generator": "tools/hf_reference.py", "transformers": transformers.__version__, "torch": torch.__version__,
           "tokenizers": tokenizers.__version__,
           "python": platform.python_version(), "device": "cpu", "dtype": "float32", "attn": "eager",
           "new_tokens": a.new_tokens, "prompts": []}
    t0 = time.time()
    for p in prompts:
        out["prompts"].append({"id": p["id"], "prompt_ids": p["ids"], "steps": greedy(model, p["ids"], a.new_tokens, "cpu")})
        print(f"cpu: {p['id']}: {len(p['ids'])} prompt tokens, generated {[s['token'] for s in out['prompts'][-1]['steps']][:8]}...",
              flush=True)
    out["cpu_seconds"] = time.time() - t0

    if True:
        try:
            import gguf  # noqa: F401  (transformers' GGUF support needs it)
            from transformers import AutoModelForCausalLM, AutoTokenizer
            d, f = os.path.split(os.path.abspath(a.gguf))
            ref = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32).eval()
            ours = model.state_dict()
            diffs = {}
            for name, t in ref.state_dict().items():
                if name in ours:
                    diffs[name] = float((t.float() - ours[name].float()).abs().max())
            worst = max(diffs.items(), key=lambda kv: kv[1])
            out["gguf_loader_check"] = {"tensors_compared": len(diffs), "max_abs_diff": worst[1], "worst_tensor": worst[0],
                                        "missing_in_ours": sorted(set(ref.state_dict()) - set(ours))[:10]}
            print("gguf loader check:", out["gguf_loader_check"], flush=True)
            hf_tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
            enc = []
            for p in prompts:
                ids = hf_tok(p["text"], add_special_tokens=False)["input_ids"]
                enc.append({"id": p["id"], "transformers_gguf_ids": ids, "equal": ids == p["ids"]})
            out["gguf_tokenizer_check"] = enc
            print("transformers GGUF tokenizer check:", [(e["id"], e["equal"]) for e in enc], flush=True)
        except Exception as e:  # the cross-checks are extra evidence, not the fixture
            out["gguf_check_error"] = repr(e)
            print("gguf cross-check failed:", repr(e), flush=True)

    if torch.cuda.is_available():
        gm = model.to("cuda")
        worst, agree, total = 0.0, 0, 0
        for p in out["prompts"]:
            g = greedy(gm, p["prompt_ids"], a.new_tokens, "cuda")
            for s_cpu, s_gpu in zip(p["steps"], g):
                total += 1
                agree += s_cpu["token"] == s_gpu["token"]
                if s_cpu["token"] == s_gpu["token"]:
                    worst = max(worst, abs(s_cpu["logprob"] - s_gpu["logprob"]))
        out["gpu_check"] = {"device": torch.cuda.get_device_name(0), "token_agreement": f"{agree}/{total}",
                            "max_abs_logprob_diff_where_tokens_agree": worst}
        print("gpu check:", out["gpu_check"], flush=True)

    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh, indent=1)
    os.replace(tmp, a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    sys.exit(main())
