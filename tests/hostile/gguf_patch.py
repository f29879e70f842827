#!/usr/bin/env python3
"""Copies a GGUF file with some metadata values replaced, for hostile-input tests.

usage: gguf_patch.py IN OUT KEY=VALUE...
A VALUE of the form u32:N sets an integer; anything else sets a string, where
\\xNN escapes give raw bytes (so names can hold escapes and invalid UTF-8).
Only keys that exist and keep their type can be set. Tensor infos are kept;
the data section is copied after the (re-padded) new header."""
import struct
import sys

SCALAR = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: 'B', 10: 'Q', 11: 'q', 12: 'd'}


def read_str(d, p):
    (n,) = struct.unpack_from('<Q', d, p)
    return d[p + 8:p + 8 + n], p + 8 + n


def skip_value(d, p, t):
    if t == 8:
        return read_str(d, p)[1]
    if t == 9:
        et, n = struct.unpack_from('<IQ', d, p)
        p += 12
        for _ in range(n):
            p = skip_value(d, p, et)
        return p
    return p + struct.calcsize('<' + SCALAR[t])


def main():
    src, dst, *edits = sys.argv[1:]
    want = {}
    for e in edits:
        k, v = e.split('=', 1)
        if v.startswith('u32:'):
            want[k.encode()] = (4, struct.pack('<I', int(v[4:])))
        else:
            raw = v.encode('utf-8').decode('unicode_escape').encode('latin-1')
            want[k.encode()] = (8, struct.pack('<Q', len(raw)) + raw)
    d = open(src, 'rb').read()
    magic, version, n_tensors, n_kv = struct.unpack_from('<4sIQQ', d, 0)
    assert magic == b'GGUF', 'not a GGUF file'
    p, out, align = 24, bytearray(d[:24]), 32
    for _ in range(n_kv):
        key, q = read_str(d, p)
        (t,) = struct.unpack_from('<I', d, q)
        end = skip_value(d, q + 4, t)
        if key == b'general.alignment':
            (align,) = struct.unpack_from('<I', d, q + 4)
        if key in want:
            wt, val = want.pop(key)
            assert wt == t, f'{key!r} has type {t}'
            out += d[p:q + 4] + val
        else:
            out += d[p:end]
        p = end
    assert not want, f'keys not found: {list(want)}'
    start = p
    for _ in range(n_tensors):
        _, q = read_str(d, p)
        (nd,) = struct.unpack_from('<I', d, q)
        p = q + 4 + 8 * nd + 4 + 8
    out += d[start:p]
    old_data = -(-p // align) * align
    out += b'\0' * (-len(out) % align)
    out += d[old_data:]
    open(dst, 'wb').write(out)


if __name__ == '__main__':
    main()
