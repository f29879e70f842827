#!/usr/bin/env python3
"""Known answers for tests/unit/test_trace.c, computed with hashlib only
(independently of the C code): step hashes and RFC 6962 Merkle roots.

Input: step i (i = 0..6) has token i and log-probs lp[j] = -(i + j) * 0.25
over n_vocab = 7 (all exactly representable in float32)."""
import hashlib
import struct

N_VOCAB = 7


def step_hash(token, logprobs):
    data = struct.pack("<i", token) + struct.pack("<%df" % len(logprobs), *logprobs)
    return hashlib.sha256(data).digest()


def mth(leaves):
    """RFC 6962 section 2.1 Merkle Tree Hash."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def main():
    steps = [step_hash(i, [-(i + j) * 0.25 for j in range(N_VOCAB)]) for i in range(7)]
    for i, h in enumerate(steps):
        print('step %d: "%s"' % (i, h.hex()))
    for n in (0, 1, 2, 3, 4, 5, 7):
        print('root %d: "%s"' % (n, mth(steps[:n]).hex()))


if __name__ == "__main__":
    main()
