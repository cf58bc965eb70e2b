"""Randomness for everything that protects privacy: the OS CSPRNG by default.

Why a type of its own: a privacy guarantee is only as good as the randomness behind it. Numpy's
default generators are predictable from their output, so a release must draw noise from the
operating system's cryptographically secure generator (``os.urandom``). A seeded generator
(numpy PCG64) exists **only** for tests and reproducibility studies; it must be asked for
explicitly with :func:`seeded_random`, and every ledger entry records which source was used
(``RandomSource.description``, which never holds the seed itself), so a seeded release can
never pass as a real one.

Everything is built on 64-bit words (:meth:`RandomSource.words`), and the derived draws are exact:

* :meth:`RandomSource.integers` is exactly uniform on ``[0, bound)`` (Lemire's multiply-shift
  with rejection for bounds up to 2**32, rejection of the top ``2**64 mod bound`` words above;
  never a biased ``word % bound``);
* :meth:`RandomSource.uniform` uses the top 53 bits of a word (all multiples of 2**-53 in [0, 1),
  equally likely);
* :meth:`RandomSource.permutation` sorts distinct random 64-bit keys (redrawn on a tie, so every
  permutation is exactly equally likely).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["RandomSource", "random_source", "secure_random", "seeded_random"]

_MAX64 = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_TWO_M53 = 2.0**-53
_MASK32 = np.uint64(0xFFFF_FFFF)

SECURE_DESCRIPTION = "os.urandom (operating-system CSPRNG)"


class RandomSource:
    """A source of uniform 64-bit words, secure (``os.urandom``) or seeded (PCG64, tests only).

    Attributes:
        secure: ``True`` when words come from the OS CSPRNG.
        seed: the seed of a seeded source, ``None`` for a secure one.
        description: human-readable provenance, copied into every ledger entry.
    """

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            self.secure = True
            self.seed: int | None = None
            self.description = SECURE_DESCRIPTION
            self._bitgen: np.random.PCG64 | None = None
        else:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError("seed must be a non-negative integer")
            self.secure = False
            self.seed = int(seed)
            # The seed itself is never part of the description: descriptions go into public
            # ledgers and manifests, and a published seed would let anyone remove the noise.
            self.description = "numpy PCG64, seeded: TEST/REPRODUCIBILITY ONLY, NOT FOR RELEASE"
            self._bitgen = np.random.PCG64(self.seed)

    def __repr__(self) -> str:
        return f"RandomSource({self.description!r})"

    # -- raw words ---------------------------------------------------------------------------
    def words(self, n: int) -> np.ndarray:
        """``n`` independent uniform 64-bit words (``uint64``)."""
        n = int(n)
        if n < 0:
            raise ValueError("n must be non-negative")
        if self._bitgen is None:
            return np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy() if n else np.empty(
                0, np.uint64
            )
        return np.asarray(self._bitgen.random_raw(n), dtype=np.uint64)

    # -- exact derived draws -------------------------------------------------------------------
    def integers(self, bound: int | np.ndarray, size: int | None = None) -> np.ndarray:
        """Exactly uniform integers on ``[0, bound)`` as ``int64``.

        ``bound`` is a positive integer below 2**63, or an array of them (one draw per element,
        ``size`` then defaults to its length). Rejection sampling: a word ``w`` is kept iff
        ``w < q * bound`` with ``q = floor((2**64 - 1) / bound)``, and the result is
        ``w // q`` — every value then has exactly ``q`` preimages (no modulo bias).
        """
        b = np.asarray(bound)
        if b.ndim == 0:
            bi = int(b)
            if bi <= 0 or bi >= 2**63:
                raise ValueError("bound must be in [1, 2**63)")
            n = 0 if size is None else int(size)
            if size is None:
                raise ValueError("size is required with a scalar bound")
            return self._integers_scalar(bi, n)
        b = b.astype(np.uint64, copy=False).ravel()
        if size is not None and int(size) != b.size:
            raise ValueError("size must equal the number of bounds")
        if b.size and (int(b.min()) <= 0 or int(b.max()) >= 2**63):
            raise ValueError("bound must be in [1, 2**63)")
        return self._integers_array(b)

    def _words32(self, n: int) -> np.ndarray:
        """``n`` uniform 32-bit words (two per 64-bit word), widened to ``uint64``."""
        return self.words((n + 1) // 2).view(np.uint32)[:n].astype(np.uint64)

    def _integers_scalar(self, bound: int, n: int) -> np.ndarray:
        if bound <= 2**32:
            # Lemire (2019): x·bound >> 32 with the low word rejected when below 2**32 mod bound,
            # so every value has exactly floor(2**32 / bound) preimages. No division per draw.
            b = np.uint64(bound)
            thr = np.uint64((2**32) % bound)
            m = self._words32(n) * b
            bad = np.flatnonzero((m & _MASK32) < thr)
            while bad.size:
                m[bad] = self._words32(bad.size) * b
                bad = bad[(m[bad] & _MASK32) < thr]
            return (m >> np.uint64(32)).astype(np.int64)
        q = np.uint64((2**64 - 1) // bound)
        limit = q * np.uint64(bound)  # <= 2**64 - 1, no overflow
        w = self.words(n)
        bad = np.flatnonzero(w >= limit)
        while bad.size:  # redraw only the rejected words
            w[bad] = self.words(bad.size)
            bad = bad[w[bad] >= limit]
        return (w // q).astype(np.int64)

    def _integers_array(self, bounds: np.ndarray) -> np.ndarray:
        q = _MAX64 // bounds
        limit = q * bounds
        w = self.words(bounds.size)
        bad = np.flatnonzero(w >= limit)
        while bad.size:
            w[bad] = self.words(bad.size)
            bad = bad[w[bad] >= limit[bad]]
        return (w // q).astype(np.int64)

    def uniform(self, size: int) -> np.ndarray:
        """Uniform ``float64`` on ``[0, 1)``: the top 53 bits of a word times 2**-53."""
        return (self.words(size) >> np.uint64(11)).astype(np.float64) * _TWO_M53

    def uniform_open(self, size: int) -> np.ndarray:
        """Uniform ``float64`` on the open interval (0, 1): cell midpoints ``(k + 1/2) 2**-53``."""
        return ((self.words(size) >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_M53

    def permutation(self, n: int) -> np.ndarray:
        """A uniformly random permutation of ``0..n-1`` (``int64``).

        Sorting i.i.d. 64-bit keys gives every ordering the same probability once the keys are
        distinct; on a tie (probability about n**2 / 2**65) all keys are redrawn.
        """
        n = int(n)
        while True:
            keys = self.words(n)
            order = np.argsort(keys, kind="stable")
            if n < 2 or not np.any(keys[order][1:] == keys[order][:-1]):
                return order.astype(np.int64)

    def choice_weighted(self, weights_2d: np.ndarray) -> np.ndarray:
        """One categorical draw per row of non-negative ``weights_2d`` (shape ``(m, c)``).

        Vectorised inverse CDF: ``u * row_total`` is located in the row's cumulative sums. For
        sampling from already-private (post-processed) models only: it uses float arithmetic, so
        it is not a privacy mechanism.
        """
        w = np.asarray(weights_2d, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError("weights_2d must be a 2-d array (rows, categories)")
        m, c = w.shape
        if m == 0:
            return np.empty(0, dtype=np.int64)
        if c == 0 or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("weights must be finite, non-negative, with at least one category")
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        if np.any(total <= 0):
            raise ValueError("every row of weights needs a positive total")
        u = self.uniform(m) * total
        idx = (cum <= u[:, None]).sum(axis=1)
        # Rounding may push u past the last cumulative sum: fall back to the last positive weight.
        over = idx >= c
        if np.any(over):
            last_pos = c - 1 - np.argmax(w[over][:, ::-1] > 0, axis=1)
            idx[over] = last_pos
        return idx.astype(np.int64)


def secure_random() -> RandomSource:
    """The default: words from ``os.urandom``."""
    return RandomSource(None)


def seeded_random(seed: int) -> RandomSource:
    """A reproducible PCG64 source. TESTS AND REPRODUCIBILITY STUDIES ONLY, never a release."""
    return RandomSource(int(seed))


def random_source(seed: int | None) -> RandomSource:
    """``None`` → :func:`secure_random`; an integer → :func:`seeded_random` (test mode)."""
    return secure_random() if seed is None else seeded_random(seed)
