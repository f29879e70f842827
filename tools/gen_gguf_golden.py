#!/usr/bin/env python3
"""Writes the GGUF golden fixture for tests/unit/test_gguf.c.

The file and the expected dequantized values both come from the Python `gguf`
package (llama.cpp's own reader/writer), an implementation we did not write:
  tests/data/golden.gguf          small GGUF v3: every scalar kv type, arrays,
                                  and F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q6_K tensors
  tests/data/golden_dequant.bin   gguf.quants.dequantize of each tensor, in
                                  tensor order, float32 little-endian, concatenated
With --fuzz-seeds it also writes the seed corpus tests/fuzz/corpus/fuzz_gguf/.
Run from the repository root: python3 tools/gen_gguf_golden.py [--fuzz-seeds]
"""
import shutil
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

OUT_GGUF = "tests/data/golden.gguf"
OUT_DEQUANT = "tests/data/golden_dequant.bin"


def random_q6_k(rng, n_blocks):
    """gguf cannot quantize to Q6_K, so pack random blocks: ql, qh, scales are
    any bytes; d is a finite half in a plausible range."""
    blocks = rng.integers(0, 256, size=(n_blocks, 210), dtype=np.uint8)
    d = rng.uniform(1e-3, 1e-1, size=n_blocks).astype(np.float16)
    blocks[:, 208:210] = d.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def main():
    rng = np.random.default_rng(20240611)
    w = gguf.GGUFWriter(OUT_GGUF, "golden")
    w.add_uint8("golden.u8", 200)
    w.add_int8("golden.i8", -100)
    w.add_uint16("golden.u16", 60000)
    w.add_int16("golden.i16", -30000)
    w.add_uint32("golden.u32", 4000000000)
    w.add_int32("golden.i32", -2000000000)
    w.add_float32("golden.f32", 0.1)
    w.add_uint64("golden.u64", 2**63 + 5)
    w.add_int64("golden.i64", -(2**62))
    w.add_float64("golden.f64", 0.1)
    w.add_bool("golden.bool", True)
    w.add_string("golden.str", 'line1\n"quoted"\\ tab\t')
    w.add_array("golden.strs", ["alpha", "", "gamma delta"])
    w.add_array("golden.ints", [1, -2, 3])
    w.add_array("golden.floats", [0.5, -1.25])
    w.add_custom_alignment(64)

    tensors = []  # (name, raw data, ggml type, float values that are the truth)
    x = rng.standard_normal((2, 64)).astype(np.float32)
    tensors.append(("t.f32", x, None))
    tensors.append(("t.f16", x.astype(np.float16), None))
    for name, qt in (("t.bf16", T.BF16), ("t.q8_0", T.Q8_0), ("t.q4_0", T.Q4_0), ("t.q4_1", T.Q4_1)):
        tensors.append((name, quantize(x, qt), qt))
    tensors.append(("t.q6_k", random_q6_k(rng, 2), T.Q6_K))

    expected = []
    for name, data, qt in tensors:
        if qt is None:
            w.add_tensor(name, data)
            expected.append(data.astype(np.float32).ravel())
        else:
            w.add_tensor(name, data, raw_dtype=qt)
            expected.append(dequantize(data, qt).astype(np.float32).ravel())

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    np.concatenate(expected).astype("<f4").tofile(OUT_DEQUANT)

    # check the file reads back with the independent reader, too
    r = gguf.GGUFReader(OUT_GGUF)
    assert [t.name for t in r.tensors] == [t[0] for t in tensors]


def write_small(path, kvs, tensors):
    w = gguf.GGUFWriter(path, "llama")
    for add, key, value in kvs:
        getattr(w, add)(key, value)
    for name, data, qt in tensors:
        w.add_tensor(name, data, raw_dtype=qt) if qt is not None else w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fuzz_seeds():
    d = "tests/fuzz/corpus/fuzz_gguf/"
    shutil.copy(OUT_GGUF, d + "golden.gguf")
    x = np.random.default_rng(1).standard_normal((2, 32)).astype(np.float32)
    write_small(d + "tokens_q4_1.gguf",
                [("add_array", "tokenizer.ggml.tokens", ["<s>", "a", "bc", "\n"]),
                 ("add_array", "tokenizer.ggml.token_type", [3, 1, 1, 1]),
                 ("add_uint32", "llama.block_count", 1)],
                [("w.q4_1", quantize(x, T.Q4_1), T.Q4_1), ("w.f32", x[0], None)])
    write_small(d + "q8_f16.gguf",
                [("add_bool", "b", False), ("add_float64", "f", 1.5), ("add_array", "flags", [True, False])],
                [("w.q8", quantize(x, T.Q8_0), T.Q8_0), ("w.f16", x.astype(np.float16), None),
                 ("w.q4_0", quantize(x, T.Q4_0), T.Q4_0)])
    with open(d + "empty_v2.gguf", "wb") as f:  # header only: no kvs, no tensors
        f.write(b"GGUF" + struct.pack("<IQQ", 2, 0, 0))


if __name__ == "__main__":
    main()
    if "--fuzz-seeds" in sys.argv[1:]:
        fuzz_seeds()
