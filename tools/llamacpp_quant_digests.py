#!/usr/bin/env python3
"""SHA-256 of every tensor llama.cpp's quantize tool writes, the reference for
our quantizers (tests/e2e/test_quant_derive.c derives the same tensors from
the same source file with ra_ggml_quantize and compares the digests).

llama.cpp runs through llama-cpp-python (llama_model_quantize, requantizing
allowed, no importance matrix); the tensors are read back with the `gguf`
package. For each file type: {tensor name: [ggml type name, sha256 of its bytes]}.

Usage: tools/llamacpp_quant_digests.py MODEL.gguf OUT.json [--ftypes q8_0,q4_0]
"""
import argparse
import ctypes
import hashlib
import json
import os
import tempfile

import gguf
import llama_cpp

FTYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
          "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}


def quantize(src, dst, ftype):
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = ftype
    p.allow_requantize = True
    p.nthread = 2
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
        raise SystemExit(f"llama_model_quantize failed for {dst}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--ftypes", default="q8_0,q4_0")
    args = ap.parse_args()
    out = {"tool": "tools/llamacpp_quant_digests.py", "llama_cpp_python": llama_cpp.__version__, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.ftypes.split(","):
            path = os.path.join(tmp, name + ".gguf")
            quantize(args.model, path, FTYPES[name])
            tensors = {}
            for t in gguf.GGUFReader(path).tensors:
                tensors[t.name] = [t.tensor_type.name.lower(), hashlib.sha256(t.data.tobytes()).hexdigest()]
            out["files"][name] = tensors
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
