#!/usr/bin/env python3
"""Golden token ids for tests/e2e/test_tokenizer_model.c, from HF `tokenizers`.

Runs anywhere (CPU): pip install tokenizers gguf, then
  python3 tools/hf_tokenizer_ids.py models/SmolLM2-135M-Instruct.Q4_1.gguf
prints one C line per case, `HF("text", parse_special, ids...);`, as pasted
into the test. Made with tokenizers 0.23.3 and gguf 0.19.0."""
import sys

from hf_gguf_tokenizer import hf_tokenizer

# (text, parse_special): edge cases of the pre-split, bytes the vocabulary
# lacks (0x04, 0xF1: HF drops them), and U+180E (not White_Space).
CASES = [
    ("  leading spaces", True), ("trailing   ", True), ("a\n\nb", True), ("line1\r\nline2\r\n", True),
    ("\tdef f(x):\n\t\treturn x**2", True), ("I'LL don't we're", True), ("1,234,567.89", True),
    ("東京 Москва café", True), ("👍🏽 👨‍👩‍👧", True), ("e\u0301", True), ("<|im_sta", True),
    ("<|im_end|><|im_start|>user", True), ("<|im_end|><|im_start|>user", False),
    ("a\x04b", True), ("\U00050000", True), ("x \u180ey", True),
    ("<|im_start|>", True), ("<|im_start|>", False), ("<|im_start|><|im_end|><|endoftext|>", True),
]


def c_string(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append('\\x%02X" "' % b)  # split so a following hex digit is not swallowed
    return '"' + "".join(out) + '"'


def main():
    tok = hf_tokenizer(sys.argv[1])
    for text, special in CASES:
        tok.encode_special_tokens = not special
        ids = tok.encode(text, add_special_tokens=False).ids
        print("HF(%s, %s, %s);" % (c_string(text).replace(' ""', ""), "true" if special else "false",
                                   ", ".join(map(str, ids))))


if __name__ == "__main__":
    main()
