"""Which value a quasi-identifier should take instead of a rare one: a conditional from the
synthetic records' own pairwise tables, raked back toward the table before enforcement.

Why: a k-anonymous table must empty (or fill) every combination seen fewer than k times. When
a record leaves a rare combination by changing one QI value, the new value should be one the
model would plausibly have drawn for that record, so that the record stays consistent with
its other columns (an age band with its numeric age, a year with its registration quarter),
and the changes, summed over many records, should not shift any distribution. Two factors:

* **plausibility** ``P(v | rest of the record)`` by naive Bayes over every other column, from
  the 2-way tables of the synthetic records *before* enforcement (additive smoothing
  :data:`ALPHA`). The synthetic records are DP output, so this is post-processing; structural
  zeros of the model (a 5-year-old adult) stay (near) impossible.
* **raking**: the ratio of each 1-way and 2-way cell's count before enforcement to its count
  now, raised to a power (:data:`RAKE_1WAY`, :data:`RAKE_2WAY`). Moves out of rare
  combinations all flow toward common values; raking makes the next moves flow back, which
  keeps the column shares and the QI-by-other-column tables close to the sample's.

Tables are kept over at most :data:`MAX_TABLE_ROWS` records (every ``stride``-th record, the
sample being shuffled) so that their cost is bounded at any table size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Additive smoothing of the naive-Bayes conditionals (pseudo-records per cell).
ALPHA = 0.5
#: Power applied to the naive-Bayes log-likelihood: below 1 softens its overconfidence (it
#: counts correlated columns as independent evidence).
TEMPER = 0.6
#: Raking powers on the 1-way and (averaged) 2-way before/now ratios.
RAKE_1WAY = 8.0
RAKE_2WAY = 60.0
#: Pair tables are counted on at most this many records.
MAX_TABLE_ROWS = 1_000_000
#: Records are added to the pair tables in chunks of this many (bounded memory).
CHUNK = 1 << 18


class PairModel:
    """Pairwise tables of each QI column with every column, before enforcement and now."""

    def __init__(self, codes: np.ndarray, qi: Sequence[int], sizes: Sequence[int]) -> None:
        self.qi = [int(j) for j in qi]
        self.sizes = [int(s) for s in sizes]
        n, d = codes.shape
        self.d = d
        self.stride = max(1, -(-n // MAX_TABLE_ROWS))
        self.before: dict[tuple[int, int], np.ndarray] = {}
        for j in self.qi:
            for c in range(d):
                if c != j:
                    self.before[(j, c)] = np.zeros(self.sizes[j] * self.sizes[c], np.int64)
        for start in range(0, n, CHUNK * self.stride):
            block = codes[start:start + CHUNK * self.stride:self.stride]
            self._add(block, 1, self.before)
        self.now = {key: t.copy() for key, t in self.before.items()}
        self.one_before = {j: self._one(self.before, j) for j in self.qi}
        self._log_cond: dict[tuple[int, int], np.ndarray] = {}
        self._log_prior: dict[int, np.ndarray] = {}
        for j in self.qi:
            one = self.one_before[j].astype(np.float64)
            self._log_prior[j] = np.log(one + ALPHA)
            for c in range(d):
                if c != j:
                    t = self.before[(j, c)].reshape(self.sizes[j], self.sizes[c])
                    self._log_cond[(j, c)] = np.log(
                        (t + ALPHA) / (one[:, None] + ALPHA * self.sizes[c]))

    def _one(self, tables: dict[tuple[int, int], np.ndarray], j: int) -> np.ndarray:
        c = 0 if j != 0 else 1
        if self.d < 2:
            return np.zeros(self.sizes[j], np.int64)
        return tables[(j, c)].reshape(self.sizes[j], self.sizes[c]).sum(axis=1)

    def _add(self, block: np.ndarray, delta: int, tables: dict[tuple[int, int], np.ndarray]) -> None:
        if block.shape[0] == 0:
            return
        for j in self.qi:
            scaled = block[:, j].astype(np.int64)
            for c in range(self.d):
                if c == j:
                    continue
                t = tables[(j, c)]
                key = scaled * self.sizes[c]
                key += block[:, c]
                if delta > 0 and block.shape[0] > 64:
                    t += np.bincount(key, minlength=t.size)
                else:
                    np.add.at(t, key, delta)

    def in_tables(self, rows: np.ndarray) -> np.ndarray:
        """Which of these records the tables count."""
        return rows % self.stride == 0

    def update(self, old: np.ndarray, new: np.ndarray | None) -> None:
        """Counted records change from ``old`` to ``new`` rows of codes (``None``: removed)."""
        self._add(old, -1, self.now)
        if new is not None:
            self._add(new, +1, self.now)

    def log_weights(self, rows_codes: np.ndarray, j: int) -> np.ndarray:
        """``log P(v | other columns)`` plus the raking term for every value ``v`` of column
        ``j``, per record (shape ``(m, size_j)``); the record's current value is the reference
        of the raking term."""
        m = rows_codes.shape[0]
        size = self.sizes[j]
        nb = np.broadcast_to(self._log_prior[j], (m, size)).copy()
        rake2 = np.zeros((m, size))
        cur = rows_codes[:, j].astype(np.int64)
        ar = np.arange(m)
        for c in range(self.d):
            if c == j:
                continue
            xc = rows_codes[:, c].astype(np.int64)
            nb += self._log_cond[(j, c)][:, xc].T
            ratio = np.log((self.before[(j, c)] + 1.0) / (self.now[(j, c)] + 1.0)).reshape(
                size, self.sizes[c])
            col = ratio[:, xc].T
            rake2 += col - col[ar, cur][:, None]
        nb *= TEMPER
        nb -= nb.max(axis=1, keepdims=True)
        nb -= np.log(np.exp(nb).sum(axis=1, keepdims=True))  # normalised log P(v | rest)
        one_now = self._one(self.now, j).astype(np.float64)
        r1 = np.log((self.one_before[j] + 1.0) / (one_now + 1.0))
        rake1 = r1[None, :] - r1[cur][:, None]
        return nb + RAKE_1WAY * rake1 + RAKE_2WAY * rake2 / max(self.d - 1, 1)
