#!/usr/bin/env python3
"""Recomputes compare's pairwise statistics from `repro-audit dump --full`
output, independently of the C code, and checks them against report.json.

usage: repro-audit dump BUNDLE --full > steps.jsonl
       tools/check_stats.py steps.jsonl BUNDLE/report.json

Definitions (docs/report-schema.md): per pair (a = the base side), per
compared step, KLD = sum_v p_a (lp_a - lp_b) over the entries whose bits
differ and are finite; dp = p_b(t) - p_a(t) with t a's token; quantiles by
linear interpolation at f * (n - 1); generate mode compares each sequence up
to and including its first step whose tokens differ. Exit 0 when every
number agrees (relative 1e-9, absolute 1e-15), 1 otherwise, 2 bad input.
"""
import json
import math
import sys

import numpy as np

KL_AT = [1, .999, .99, .95, .90, .5, .10, .05, .01, .001, 0]
DP_AT = [1, .999, .99, .95, .90, .75, .5, .25, .10, .05, .01, .001, 0]


def qname(at):
    return {1: "max", 0: "min", .5: "median"}.get(at, f"{100 * at:g}%")


def load(path):
    """Steps of each trace file, in the order dump printed them."""
    traces = {}
    with (sys.stdin if path == "-" else open(path)) as f:
        for line in f:
            r = json.loads(line)
            traces.setdefault(r["file"], []).append(r)
    return traces


def as_array(values):
    """The float32 values dump printed (9 digits give each back exactly), as float64."""
    return np.array([-math.inf if v is None else v for v in values], dtype=np.float32).astype(np.float64)


def f32(v):
    return -math.inf if v is None else float(np.float32(v))


def references(traces):
    """Per format@kernel: its first trace with full vectors, else its first."""
    refs = {}
    for steps in traces.values():
        label = f'{steps[0]["format"]}@{steps[0]["kernel"]}'
        full = all("logprobs" in s for s in steps)
        if label not in refs or (full and not refs[label][1]):
            refs[label] = (steps, full)
    return {k: v[0] for k, v in refs.items()}


def by_seq(steps):
    seqs = {}
    for s in steps:
        seqs.setdefault(s["seq"], []).append(s)
    return [sorted(seqs[k], key=lambda s: s["step"]) for k in sorted(seqs)]


def logprob_of(b, t):
    if "logprobs" in b:
        return float(as_array(b["logprobs"])[t])
    if b["token"] == t:
        return f32(b["logprob"])
    for i, lp in zip(b["topk_ids"], b["topk_logprobs"]):
        if i == t:
            return f32(lp)
    return math.nan


def pair_stats(A, B, generate):
    kl, dp, l2 = [], [], []
    max_abs, top1, exact, nll_a, nll_b = 0.0, 0, 0, 0.0, 0.0
    for xa, xb in zip(by_seq(A), by_seq(B)):
        for sa, sb in zip(xa, xb):
            if "logprobs" in sa and "logprobs" in sb:
                la, lb = as_array(sa["logprobs"]), as_array(sb["logprobs"])
            else:  # the entries both top-k lists hold
                ia = dict(zip(sa["topk_ids"], sa["topk_logprobs"]))
                ids = [i for i in sb["topk_ids"] if i in ia]
                la = as_array([ia[i] for i in ids])
                lb = as_array([dict(zip(sb["topk_ids"], sb["topk_logprobs"]))[i] for i in ids])
            m = np.isfinite(la) & np.isfinite(lb) & (la != lb)
            d = la[m] - lb[m]
            l2.append(math.sqrt(float(np.sum(d * d))))
            if d.size:
                max_abs = max(max_abs, float(np.max(np.abs(d))))
            if "logprobs" in sa and "logprobs" in sb:
                kl.append(float(np.sum(np.exp(la[m]) * d)))
                top1 += int(np.argmax(la)) == int(np.argmax(lb))
            else:
                kl.append(math.nan)
                top1 += sa["topk_ids"][0] == sb["topk_ids"][0]
            t = sa["token"]
            pa, pb = f32(sa["logprob"]), logprob_of(sb, t)
            nll_a -= pa
            nll_b -= pb
            if not math.isnan(pb):
                dp.append(math.exp(pb) - math.exp(pa))
            exact += sa["step_hash"] == sb["step_hash"]
            if generate and sa["token"] != sb["token"]:
                break
    n = len(l2)
    full = not any(math.isnan(v) for v in kl)
    out = {
        "steps": n, "bit_exact_steps": exact, "l2_mean": sum(l2) / n, "max_abs_diff": max_abs,
        "top1_agreement": top1 / n,
        "kl_mean": float(np.mean(kl)) if full else None,
        "delta_p_mean": float(np.mean(dp)) if dp else None,
        "delta_p_rms": math.sqrt(float(np.mean(np.square(dp)))) if dp else None,
        "ppl_a": None if generate else math.exp(nll_a / n),
        "ppl_b": None if generate else math.exp(nll_b / n),
    }
    if full:
        out["kl_quantiles"] = {qname(q): float(np.quantile(kl, q)) for q in KL_AT}
    if dp:
        out["delta_p_quantiles"] = {qname(q): float(np.quantile(dp, q)) for q in DP_AT}
    return out


def agree(x, y):
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-15)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        traces, report = load(sys.argv[1]), json.load(open(sys.argv[2]))
    except (OSError, ValueError) as e:
        print(f"check_stats: {e}", file=sys.stderr)
        return 2
    if report.get("schema") != "repro-audit.report" or report.get("version") != 2:
        print("check_stats: not a report.json of schema version 2", file=sys.stderr)
        return 2
    refs, generate, bad, checked = references(traces), report["mode"] == "generate", 0, 0
    for p in report["pairs"]:
        mine = pair_stats(refs[p["a"]], refs[p["b"]], generate)
        worst = 0.0
        for key, v in mine.items():
            theirs = p.get(key)
            pairs = [(k, v[k], theirs.get(k) if theirs else None) for k in v] if isinstance(v, dict) else [(key, v, theirs)]
            for name, a, b in pairs:
                checked += 1
                if not agree(a, b):
                    bad += 1
                    print(f"MISMATCH {p['a']} vs {p['b']} {key} {name}: recomputed {a}, report {b}")
                elif a not in (None, 0) and b is not None:
                    worst = max(worst, abs(a - b) / abs(a))
        print(f"{p['a']:>12} vs {p['b']:<12} {mine['steps']:4d} steps  mean KLD {mine['kl_mean'] if mine['kl_mean'] is not None else 'n/a':<24}"
              f" RMS dp {mine['delta_p_rms']:.6e}  same top p {mine['top1_agreement']:.4f}  largest relative difference {worst:.1e}")
    print(f"check_stats: {checked} numbers over {len(report['pairs'])} pairs, {bad} disagree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
