"""Order-independent per-record randomness: a keyed PRF of (record content, occurrence index).

Why: three steps choose records or attributes at random: the holdout kept out of training, the
contribution bound of the aggregate release (a record holding too many attributes keeps a random
subset), and the evaluation sample of very large tables. Drawing those choices from a random
stream *in record order* ties the result to the order records happen to be stored in, which a
cluster (Spark) does not keep stable. Instead each record gets its randomness from a keyed
pseudo-random function of what it is:

``u(record) = SipHash-2-4_key(content words ‖ occurrence index ‖ purpose)``

where *content words* pack the record's codes over the public domains (mixed radix), and the
*occurrence index* numbers identical records 0, 1, 2, … (identical records are interchangeable,
so whichever copy gets which index, the multiset of outcomes is the same). The 128-bit key is
drawn from the release's :class:`~ptsynth.privacy.RandomSource`, so a seeded release is
reproducible and a real one unpredictable; every backend (numpy here, Spark executors running
this same code) computes the same value for the same record.

Privacy: each such choice is a *deterministic per-record transformation* once the key is fixed.
Adding or removing one person's record adds or removes exactly one transformed record (the
others keep their content and, as a multiset, their occurrence indices), so every sensitivity
argument made for "one record changes" holds for every key, and the key itself never depends
on the data. Independence across records (what made the choices *random*) holds up to the PRF's
indistinguishability from a random function.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.counting.keys import MAX_CELLS

_M64 = 0xFFFF_FFFF_FFFF_FFFF
#: SplitMix64's increment (2**64 / golden ratio): per-attribute streams from one record hash.
_GAMMA = np.uint64(0x9E37_79B9_7F4A_7C15)

#: Purposes, mixed into the message so one key never serves two choices alike.
PURPOSE_HOLDOUT = 1
PURPOSE_BOUND = 2
PURPOSE_EVALUATION = 3


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def siphash24(key: Sequence[int], words: Sequence[np.ndarray]) -> np.ndarray:
    """SipHash-2-4 of the little-endian byte string of ``words`` (one uint64 per message word),
    vectorised over records: ``words[i]`` is the i-th message word of every record.

    Equal to the reference SipHash-2-4 of the ``8 * len(words)`` bytes (tested against its test
    vectors).
    """
    k0, k1 = (np.uint64(int(k) & _M64) for k in key)
    n = words[0].shape[0] if len(words) else 1
    v0 = np.full(n, k0 ^ np.uint64(0x736F6D6570736575), dtype=np.uint64)
    v1 = np.full(n, k1 ^ np.uint64(0x646F72616E646F6D), dtype=np.uint64)
    v2 = np.full(n, k0 ^ np.uint64(0x6C7967656E657261), dtype=np.uint64)
    v3 = np.full(n, k1 ^ np.uint64(0x7465646279746573), dtype=np.uint64)

    def rounds(count: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(count):
            v0 += v1
            v1 = _rotl(v1, 13)
            v1 ^= v0
            v0 = _rotl(v0, 32)
            v2 += v3
            v3 = _rotl(v3, 16)
            v3 ^= v2
            v0 += v3
            v3 = _rotl(v3, 21)
            v3 ^= v0
            v2 += v1
            v1 = _rotl(v1, 17)
            v1 ^= v2
            v2 = _rotl(v2, 32)

    for m in words:
        m = np.asarray(m, dtype=np.uint64)
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = np.uint64(((8 * len(words)) & 0xFF) << 56)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= np.uint64(0xFF)
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def content_words(codes: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Each record's codes packed into uint64 words (mixed radix over the public domain sizes,
    columns in order, a new word whenever the next column would overflow 2**63)."""
    codes = np.asarray(codes)
    n = codes.shape[0]
    out: list[np.ndarray] = []
    word: np.ndarray | None = None
    cells = 1
    for j, size in enumerate(int(s) for s in sizes):
        col = codes[:, j].astype(np.uint64)
        if word is None or cells * size >= MAX_CELLS:
            if word is not None:
                out.append(word)
            word, cells = col, size
        else:
            word = word * np.uint64(size) + col
            cells *= size
    if word is not None:
        out.append(word)
    return out or [np.zeros(n, dtype=np.uint64)]


def occurrence_index(words: Sequence[np.ndarray]) -> np.ndarray:
    """0, 1, 2, … over the records with identical content words (any order among them)."""
    n = words[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(words[0], kind="stable") if len(words) == 1 else np.lexsort(words[::-1])
    new = np.ones(n, dtype=bool)
    for w in words:
        s = w[order]
        new[1:] &= s[1:] == s[:-1]
    new = ~new
    new[0] = True
    starts = np.flatnonzero(new)
    run = np.repeat(starts, np.diff(np.r_[starts, n]))
    occ = np.empty(n, dtype=np.int64)
    occ[order] = np.arange(n, dtype=np.int64) - run
    return occ


def record_hash(
    key: Sequence[int], codes: np.ndarray, sizes: Sequence[int], occurrence: np.ndarray,
    purpose: int,
) -> np.ndarray:
    """``SipHash_key(content ‖ occurrence ‖ purpose)``: one uint64 per record."""
    words = content_words(codes, sizes)
    tail = np.asarray(occurrence, dtype=np.uint64) * np.uint64(4) + np.uint64(purpose)
    return siphash24(key, [*words, tail])


def to_unit(h: np.ndarray) -> np.ndarray:
    """uint64 → float64 uniform on [0, 1) (top 53 bits)."""
    return (np.asarray(h, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = x.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58_476D_1CE4_E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D0_49BB_1331_11EB)
    z ^= z >> np.uint64(31)
    return z


def attribute_uniforms(h: np.ndarray, d: int) -> np.ndarray:
    """``(n, d)`` uniforms on [0, 1): SplitMix64's stream seeded by each record's hash."""
    h = np.asarray(h, dtype=np.uint64)
    steps = (np.arange(1, d + 1, dtype=np.uint64) * _GAMMA)[None, :]
    with np.errstate(over="ignore"):
        return to_unit(_splitmix(h[:, None] + steps))


def draw_key(rng) -> tuple[int, int]:  # noqa: ANN001 - a RandomSource (import cycle otherwise)
    """A fresh 128-bit PRF key from the release's RandomSource."""
    w = rng.words(2)
    return int(w[0]), int(w[1])
