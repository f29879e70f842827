#!/usr/bin/env python3
"""External truth for our compressed-tensors checkpoints, with compressed-tensors itself.

Three steps (none of them in CI; tests/unit/test_ct_fixture.c holds the C code to the fixture):
    # here (numpy + safetensors): a two-block toy of SmolLM2's real weights, small enough to
    # travel to the GPU machine, and the GPTQ/AWQ layout check (4.) on the whole model
    build/repro-audit export-hf --format bf16 models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/bf16
    python3 tools/ct_check.py toy --base /tmp/bf16 --out /tmp/toy
    python3 tools/ct_check.py layout --bin build/repro-audit --model models/SmolLM2-135M-Instruct.Q4_1.gguf --work /tmp/ct
    # where torch and compressed-tensors are installed: 1., 2., 3. and 5.
    python3 tools/ct_check.py check --bin build/repro-audit --model /tmp/toy --work /tmp/ct \
        --fixture tests/fixtures/ct_fixture.safetensors

1. Ours -> theirs: `repro-audit quantize` writes w4a16, fp8, fp8-block, nvfp4 and mxfp4
   checkpoints; compressed-tensors decompresses layers of them; `repro-audit export-hf`
   dequantizes the same checkpoint with our reference. Every float must be equal.
2. Theirs -> ours: compressed-tensors compresses our bf16 weights (with the scales of our
   checkpoint, so its quantize and pack are exercised) into a checkpoint that we read back
   (export-hf); every float must equal compressed-tensors' own decompression, and its bytes
   are compared with ours.
3. Our quantization_config equals the one compressed-tensors builds from its presets.
4. GPTQ and AWQ checkpoints load with the safetensors package with the expected names,
   dtypes, shapes and byte counts.
5. The fixture: compressed-tensors compresses slices of our bf16 weights (scales from simple
   RTN rules in this script) and decompresses them; tests/unit/test_ct_fixture.c holds our
   unpack + dequantize to those floats bit for bit without python.
"""
import argparse, json, os, shutil, struct, subprocess, sys, traceback

import numpy as np

if len(sys.argv) > 1 and sys.argv[1] == "check":
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file, load_file
    import compressed_tensors
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme, preset_name_to_scheme

FORMATS = {  # ours: (compressed-tensors preset, format)
    "w4a16": ("W4A16", "pack-quantized"),
    "fp8": (None, "float-quantized"),
    "fp8-block": ("FP8_BLOCK", "float-quantized"),
    "fp8-w8a8": ("FP8_DYNAMIC", "float-quantized"),
    "nvfp4": ("NVFP4A16", "nvfp4-pack-quantized"),
    "mxfp4": ("MXFP4A16", "mxfp4-pack-quantized"),
}
PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
        "mlp.up_proj", "mlp.down_proj"]
TOY_BLOCKS = [0, 17]  # SmolLM2's blocks that the toy keeps, as its blocks 0 and 1
TOY_VOCAB = 512


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)), 8 + n


def st_read(path):
    """name -> (dtype, shape, raw bytes), straight from the file (no dtype conversion)."""
    h, base = st_header(path)
    data = open(path, "rb").read()
    return {k: (v["dtype"], v["shape"], data[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in h.items() if k != "__metadata__"}


def st_write(path, tensors, meta):
    """tensors: name -> (dtype, shape, bytes), written in sorted order."""
    h, off, blobs = {"__metadata__": meta}, 0, []
    for k in sorted(tensors):
        dt, shape, b = tensors[k]
        h[k] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hj = json.dumps(h, separators=(",", ":")).encode()
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def cmd_toy(a):
    """Two of SmolLM2's blocks and the first TOY_VOCAB rows of its embedding, in bf16: a real-weight
    model of 15 MB that quantize and export-hf take as they take the whole one."""
    t = st_read(os.path.join(a.base, "model.safetensors"))
    out = {}
    for k, (dt, shape, b) in t.items():
        assert dt == "F32", k
        if k.startswith("model.layers."):
            blk = int(k.split(".")[2])
            if blk not in TOY_BLOCKS:
                continue
            k = k.replace(f"model.layers.{blk}.", f"model.layers.{TOY_BLOCKS.index(blk)}.")
        elif k == "model.embed_tokens.weight":
            b, shape = b[:TOY_VOCAB * shape[1] * 4], [TOY_VOCAB, shape[1]]
        v = np.frombuffer(b, dtype=np.uint32)
        assert not (v & 0xffff).any(), f"{k} is not bf16-exact (export with --format bf16)"
        out[k] = ("BF16", shape, (v >> 16).astype(np.uint16).tobytes())
    cfg = json.load(open(os.path.join(a.base, "config.json")))
    cfg.update(num_hidden_layers=len(TOY_BLOCKS), vocab_size=TOY_VOCAB, torch_dtype="bfloat16")
    os.makedirs(a.out, exist_ok=True)
    st_write(os.path.join(a.out, "model.safetensors"), out, {"format": "pt"})
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    print(f"toy: {a.out} ({len(out)} tensors, blocks {TOY_BLOCKS} of {a.base}, vocab {TOY_VOCAB})")
    return 0


# GPTQ v1 / AutoAWQ dequantization written from their documented layouts (docs/formats.md,
# ../shared/reference/formats-int4.md), independent of our C code.
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def nibbles(words, axis, order=None):
    """int32 words -> 8 nibbles each along axis (field j at bits 4j), AWQ's order undone."""
    w = words.view(np.uint32)
    f = np.stack([(w >> (4 * j)) & 15 for j in range(8)], axis=axis + 1)
    if order is not None:  # field j holds logical column order[j]
        g = np.empty_like(f)
        idx = [slice(None)] * f.ndim
        for j, c in enumerate(order):
            src, dst = list(idx), list(idx)
            src[axis + 1], dst[axis + 1] = j, c
            g[tuple(dst)] = f[tuple(src)]
        f = g
    shape = list(w.shape)
    shape[axis] *= 8
    return f.reshape(shape).astype(np.int64)


def layout_one(fmt, ck, deq, layer, cfg):
    """Names, dtypes, shapes and byte counts as the python safetensors package reads them, then the
    weights dequantized from those tensors by the published layout, equal to our export-hf floats."""
    from safetensors.numpy import safe_open as np_open
    qc = cfg["quantization_config"]
    G = qc["group_size"]
    want = {"qweight": "int32", "qzeros": "int32", "scales": "float16"}
    if fmt.startswith("gptq"):
        want["g_idx"] = "int32"
    got = {}
    with np_open(os.path.join(ck, "model.safetensors"), "np") as f:
        for suf in want:
            got[suf] = f.get_tensor(layer + "." + suf)
    with np_open(os.path.join(deq, "model.safetensors"), "np") as f:
        ours = f.get_tensor(layer + ".weight")
    N, K = ours.shape  # out, in
    ng = -(-K // G)
    shapes = {"awq": {"qweight": (K, N // 8), "qzeros": (ng, N // 8), "scales": (ng, N)},
              "gptq": {"qweight": (K // 8, N), "qzeros": (ng, N // 8), "scales": (ng, N), "g_idx": (K,)}}
    shapes = shapes["awq" if fmt.startswith("awq") else "gptq"]
    ok = True
    for suf, t in got.items():
        good = str(t.dtype) == want[suf] and tuple(t.shape) == shapes[suf] and t.nbytes == t.size * t.itemsize
        ok &= good
        print(f"  {fmt:12s} layout   {layer + '.' + suf:44s} {t.dtype} {list(t.shape)} {'ok' if good else 'WRONG'}")
    if not ok:
        return False
    s = got["scales"].astype(np.float32)
    if fmt.startswith("awq"):
        q = nibbles(got["qweight"], 1, AWQ_ORDER)  # [K, N]
        z = nibbles(got["qzeros"], 1, AWQ_ORDER)   # [ng, N]
        g = np.arange(K) // G
    else:
        q = nibbles(got["qweight"].T.copy(), 1).T  # packed along K: [K, N]
        z = nibbles(got["qzeros"], 1) + (1 if qc.get("checkpoint_format", "gptq") == "gptq" else 0)
        g = got["g_idx"].astype(np.int64)
        ok &= bool((g >= 0).all() and (g < ng).all())
    w = ((q - z[g]).astype(np.float32) * s[g]).T  # one float32 product per weight
    n = int((w.view(np.uint32) != ours.view(np.uint32)).sum())
    print(f"  {fmt:12s} dequant  {layer:44s} {'equal' if n == 0 else f'{n} of {w.size} DIFFER'}")
    return ok and n == 0


def cmd_layout(a):
    import safetensors
    print(f"safetensors {safetensors.__version__}, numpy {np.__version__}")
    os.makedirs(a.work, exist_ok=True)
    ok = True
    for fmt in a.formats.split(","):
        ck, deq = os.path.join(a.work, fmt), os.path.join(a.work, fmt + "-deq")
        if not os.path.exists(ck):
            sh(a.bin, "quantize", "--model", a.model, "--format", fmt, "--out", ck, "--quiet")
        if not os.path.exists(deq):
            sh(a.bin, "export-hf", ck, deq)
        cfg = json.load(open(os.path.join(ck, "config.json")))
        print(f"  {fmt:12s} quantization_config {json.dumps(cfg['quantization_config'], sort_keys=True)}")
        for blk in a.blocks:
            for p in PROJ:
                ok &= layout_one(fmt, ck, deq, f"model.layers.{blk}.{p}", cfg)
    print("LAYOUT OK" if ok else "LAYOUT MISMATCHES")
    return 0 if ok else 1


def tensors(path, prefix):
    out = {}
    with safe_open(path, "pt") as f:
        for k in f.keys():
            if k.startswith(prefix + "."):
                out[k[len(prefix) + 1:]] = f.get_tensor(k)
    return out


def scheme_of(cfg):
    g = cfg["quantization_config"]["config_groups"]["group_0"]
    return QuantizationScheme.model_validate(g)


def same(theirs, ours):
    """compressed-tensors decompresses into the scale's dtype (bf16 here, float32 for FP8 blocks):
    (u - z) * s, e4m3 * s and e2m1 * (e4m3 / g) are computed in float32 and rounded once, where our
    reference keeps the exact float32 value. So theirs must equal ours rounded to theirs' dtype."""
    a, b = theirs.float().contiguous(), ours.to(theirs.dtype).float().contiguous()
    if a.shape != b.shape:
        return False, f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
    eq = (a.view(torch.int32) == b.view(torch.int32))
    n = int((~eq).sum())
    return n == 0, f"{theirs.dtype}, {n} of {a.numel()} differ, max |diff| {float((a - b).abs().max()):.3g}"


def check_config(fmt, ours):
    preset, cformat = FORMATS[fmt]
    if preset is None:  # FP8 per-channel weight-only: FP8_DYNAMIC without its activations
        sch = preset_name_to_scheme("FP8_DYNAMIC", ["Linear"])
        sch.input_activations = None
    else:
        sch = preset_name_to_scheme(preset, ["Linear"])
    if sch.weights.strategy == "group" and sch.weights.type == "int":  # the preset's 128, fitted to the model
        sch.weights.group_size = ours["quantization_config"]["config_groups"]["group_0"]["weights"]["group_size"]
    sch.format = cformat
    qc = QuantizationConfig(config_groups={"group_0": sch}, format=cformat, quantization_status="compressed",
                            ignore=["lm_head"])
    theirs = {"version": compressed_tensors.__version__, "quant_method": "compressed-tensors", "sparsity_config": {},
              "transform_config": {}, **qc.model_dump(exclude=["quant_method"])}
    theirs = json.loads(json.dumps(theirs))
    mine = ours["quantization_config"]
    ok = mine == theirs
    print(f"  {fmt:10s} quantization_config {'equal' if ok else 'DIFFERS'}")
    if not ok:
        print("    ours:  ", json.dumps(mine, sort_keys=True))
        print("    theirs:", json.dumps(theirs, sort_keys=True))
    return ok


def bytes_equal(a, b):
    return a.dtype == b.dtype and torch.equal(a.contiguous().view(torch.uint8).flatten(),
                                              b.contiguous().view(torch.uint8).flatten())


def check_format(a, fmt, layers):
    ck, deq = os.path.join(a.work, fmt), os.path.join(a.work, fmt + "-deq")
    if not os.path.exists(ck):
        sh(a.bin, "quantize", "--model", a.model, "--format", fmt, "--out", ck, "--quiet")
    if not os.path.exists(deq):
        sh(a.bin, "export-hf", ck, deq)
    cfg = json.load(open(os.path.join(ck, "config.json")))
    ok = check_config(fmt, cfg)
    sch = scheme_of(cfg)
    comp = comp_of(cfg["quantization_config"]["format"])
    # 1. ours -> theirs
    from_ours = {}
    for layer in layers:
        sd = tensors(os.path.join(ck, "model.safetensors"), layer)
        theirs = from_ours[layer] = comp.decompress(sd, sch)["weight"]
        ours = tensors(os.path.join(deq, "model.safetensors"), layer)["weight"]
        good, why = same(theirs, ours)
        ok &= good
        print(f"  {fmt:10s} ours->ct  {layer:34s} {'equal' if good else 'DIFFER'} ({why})")
    # 2. theirs -> ours: compressed-tensors compresses the bf16 weights with our scales
    base = os.path.join(a.model, "model.safetensors")
    ct_dir = os.path.join(a.work, "ct-" + fmt)
    shutil.rmtree(ct_dir, ignore_errors=True)
    shutil.copytree(ck, ct_dir)
    all_t = load_file(os.path.join(ck, "model.safetensors"))
    expected, nsame, nbytes, nsame32, ndiff, nw = {}, 0, 0, 0, 0, 0
    for layer in layers:
        sd = tensors(os.path.join(ck, "model.safetensors"), layer)
        w = tensors(base, layer)["weight"].to(torch.bfloat16)
        scale = sd["weight_scale"]
        if fmt == "nvfp4":  # in memory the scale is a model-dtype parameter; the compressor casts it to E4M3
            scale = scale.to(torch.bfloat16)
        if fmt == "mxfp4":  # in memory 2^(b - 127); the compressor stores the exponent byte
            scale = torch.exp2(scale.float() - 127).to(torch.bfloat16)
        state = {"weight": w, "weight_scale": scale}
        if "weight_global_scale" in sd:
            state["weight_global_scale"] = sd["weight_global_scale"]
        c = comp.compress(state, sch)
        # the same with the weight in float32: x / scale is then divided in float32, as ours
        c32 = comp.compress({**state, "weight": w.float()}, sch)
        for k, v in c.items():
            if k in sd and v.dtype == sd[k].dtype:
                nbytes += 1
                nsame += bytes_equal(v, sd[k])
                nsame32 += bytes_equal(c32[k], sd[k])
            all_t[layer + "." + k] = v.contiguous()
        expected[layer] = comp.decompress(c, sch)["weight"]
        ndiff += int((expected[layer].float() != from_ours[layer].float()).sum())
        nw += expected[layer].numel()
    print(f"  {fmt:10s} ct compress: {nsame} of {nbytes} tensors byte-identical to ours; {ndiff} of {nw} "
          f"weights ({100 * ndiff / nw:.3f}%) quantized to another value; with x / scale in float32: "
          f"{nsame32} of {nbytes} byte-identical")
    save_file(all_t, os.path.join(ct_dir, "model.safetensors"), metadata={"format": "pt"})
    ct_deq = ct_dir + "-deq"
    shutil.rmtree(ct_deq, ignore_errors=True)
    sh(a.bin, "export-hf", ct_dir, ct_deq)
    for layer in layers:
        ours = tensors(os.path.join(ct_deq, "model.safetensors"), layer)["weight"]
        good, why = same(expected[layer], ours)
        ok &= good
        print(f"  {fmt:10s} ct->ours  {layer:34s} {'equal' if good else 'DIFFER'} ({why})")
    return ok


def cmd_check(a):
    print(f"torch {torch.__version__}, compressed-tensors {compressed_tensors.__version__}, "
          f"safetensors {__import__('safetensors').__version__}")
    os.makedirs(a.work, exist_ok=True)
    layers = [f"model.layers.{b}.{p}" for b in range(len(TOY_BLOCKS)) for p in PROJ]
    ok = True
    if a.fixture:
        try:
            make_fixture(os.path.join(a.model, "model.safetensors"), a.fixture)
        except Exception:
            traceback.print_exc()
            ok = False
    for fmt in FORMATS:
        try:
            ok &= check_format(a, fmt, layers)
        except Exception:
            traceback.print_exc()
            print(f"  {fmt:10s} FAILED")
            ok = False
    print("ALL EQUAL" if ok else "MISMATCHES")
    return 0 if ok else 1


def make_fixture(base, path):
    """A 128x256 slice of the toy's bf16 weights compressed and decompressed by compressed-tensors
    in each format, with scales from plain RTN rules written here (not ours)."""
    w = tensors(base, "model.layers.0.mlp.up_proj")["weight"][:128, :256].to(torch.bfloat16)
    wf = w.float()
    out = {}
    for fmt in ("w4a16", "fp8", "fp8-block", "nvfp4", "mxfp4"):
        preset, cformat = FORMATS[fmt]
        sch = preset_name_to_scheme(preset or "FP8_DYNAMIC", ["Linear"])
        if fmt in ("fp8", "fp8-block"):
            sch.input_activations = None
        state = {"weight": w}
        if fmt == "w4a16":
            state["weight_scale"] = (wf.view(128, 2, 128).abs().amax(dim=2) / 7.5).to(torch.bfloat16)
        elif fmt == "fp8":
            state["weight_scale"] = (wf.abs().amax(dim=1, keepdim=True) / 448).to(torch.bfloat16)
        elif fmt == "fp8-block":
            state["weight_scale"] = wf.view(1, 128, 2, 128).abs().amax(dim=(1, 3)) / 448  # float32 [1, 2]
        elif fmt == "nvfp4":
            gs = (448 * 6 / wf.abs().max()).reshape(1).float()
            s16 = wf.view(128, 16, 16).abs().amax(dim=2) / 6 * gs
            state["weight_scale"] = s16.clamp(min=2 ** -9, max=448).to(torch.float8_e4m3fn).to(torch.bfloat16)
            state["weight_global_scale"] = gs
        else:  # 2^(floor(log2 amax) - 2), stored by the compressor as the E8M0 byte
            e = torch.floor(torch.log2(wf.view(128, 8, 32).abs().amax(dim=2).clamp(min=2 ** -100))) - 2
            state["weight_scale"] = torch.exp2(e).to(torch.bfloat16)
        c = comp_of(cformat).compress(state, sch)
        for k, v in c.items():
            out[f"{fmt}.{k}"] = v.contiguous()
        # decompressed in the scale's dtype: bf16, or float32 for the FP8 blocks
        out[f"{fmt}.expected"] = comp_of(cformat).decompress(c, sch)["weight"].contiguous()
        print(f"fixture {fmt}: " + ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in c.items()))
    save_file(out, path, metadata={"made_by": "tools/ct_check.py", "compressed_tensors": compressed_tensors.__version__,
                                   "torch": torch.__version__})
    print(f"fixture: {path} ({os.path.getsize(path)} bytes)")


def comp_of(cformat):
    return BaseCompressor.get_value_from_registry(cformat)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("toy")
    t.add_argument("--base", required=True, help="export-hf --format bf16 of SmolLM2")
    t.add_argument("--out", required=True)
    for name in ("layout", "check"):
        p = sub.add_parser(name)
        p.add_argument("--bin", default="build/repro-audit")
        p.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
        p.add_argument("--work", default="/tmp/ct-check")
    sub.choices["layout"].add_argument("--formats", default="awq,awq-cal,gptq,gptq-act,gptq-cal-act")
    sub.choices["layout"].add_argument("--blocks", type=int, nargs="+", default=[0, 29])
    sub.choices["check"].add_argument("--fixture", default=None)
    a = ap.parse_args()
    return {"toy": cmd_toy, "layout": cmd_layout, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
