"""MST-style domain compression: merge a column's rare values into one model cell.

Why: a value whose noisy count is below ``3 sigma`` is mostly noise; giving it its own row in
every 2- and 3-way table multiplies clique sizes (and noise) for no signal. Merging such values
into one bucket is post-processing of the noisy 1-way marginal, so it is free. On the way back,
a record in the bucket gets one of the merged values drawn in proportion to their (clipped)
noisy counts, which keeps the 1-way marginal right while the bucket's joint structure is
shared by its members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ptsynth.privacy import RandomSource
from ptsynth.synth.graphical.sampling import stratified_draw


@dataclass(frozen=True)
class ColumnCompression:
    """Map between a column's original codes and its model codes.

    Attributes:
        forward: model code of each original code (length = original size).
        kept: original codes that keep a model cell of their own, in model-code order.
        merged: original codes sharing the last model cell (empty: no compression).
        merged_probs: how a record in the merged cell is spread back over ``merged``.
        merged_noisy: the noisy counts of ``merged`` (a DP output), kept for :meth:`refined`.
    """

    forward: np.ndarray
    kept: np.ndarray
    merged: np.ndarray
    merged_probs: np.ndarray
    merged_noisy: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.kept.size + (1 if self.merged.size else 0))

    @property
    def compressed(self) -> bool:
        return bool(self.merged.size)

    @classmethod
    def identity(cls, size: int) -> ColumnCompression:
        codes = np.arange(size, dtype=np.int64)
        return cls(codes, codes, np.zeros(0, np.int64), np.zeros(0))

    @classmethod
    def from_noisy(cls, noisy: np.ndarray, sigma: float, threshold: float = 3.0) -> ColumnCompression:
        """Merge values with noisy count below ``threshold * sigma`` (only if two or more)."""
        y = np.asarray(noisy, dtype=np.float64)
        rare = y < threshold * sigma
        if rare.sum() < 2:
            return cls.identity(y.size)
        kept = np.flatnonzero(~rare)
        merged = np.flatnonzero(rare)
        forward = np.empty(y.size, dtype=np.int64)
        forward[kept] = np.arange(kept.size)
        forward[merged] = kept.size
        w = np.clip(y[merged], 0.0, None)
        probs = w / w.sum() if w.sum() > 0 else np.full(merged.size, 1.0 / merged.size)
        return cls(forward, kept, merged, probs, y[merged].copy())

    def refined(self, bucket_total: float) -> ColumnCompression:
        """Spread the bucket by the noisy counts projected onto ``{x >= 0, sum x = total}``.

        Why: most merged values are rare or absent, and clipping their noisy counts at zero
        keeps every positive noise draw, so the expansion invents records for values that
        barely occur (on Adult's capital-gain, about half the bucket). The Euclidean projection
        onto the simplex scaled to the model's estimate of the bucket (which pools every
        measurement touching the column, not only the 1-way one) subtracts one common
        threshold and clips: it is the least-squares consistent estimate ("norm-sub", Wang et
        al. 2020), zeroes out most noise-only values, and is post-processing.
        """
        if not self.compressed or self.merged_noisy is None:
            return self
        y = self.merged_noisy
        total = float(bucket_total)
        if not total > 0:
            return self
        x = simplex_projection(y, total)
        s = x.sum()
        probs = x / s if s > 0 else np.full(y.size, 1.0 / y.size)
        return ColumnCompression(self.forward, self.kept, self.merged, probs, y)

    def compress_measurement(self, noisy: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Noisy counts over model codes and the noise std of each model cell."""
        y = np.asarray(noisy, dtype=np.float64)
        if not self.compressed:
            return y, np.full(y.size, float(sigma))
        values = np.concatenate([y[self.kept], [y[self.merged].sum()]])
        sig = np.full(values.size, float(sigma))
        sig[-1] = sigma * np.sqrt(self.merged.size)
        return values, sig

    def expand(
        self, model_codes: np.ndarray, rng: RandomSource,
        keys: np.ndarray | Sequence[np.ndarray] | None = None,
        key_sizes: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Original codes for model codes; merged-cell records drawn over the merged values.

        ``keys`` (code columns, one value per record, e.g. the record's other columns, with
        their ``key_sizes``): spread the merged values over the bucket's records in a balanced
        order of those keys (see
        :func:`~ptsynth.synth.graphical.sampling.stratified_draw`), not at random.
        """
        dtype = np.uint8 if self.forward.size <= 256 else (
            np.uint16 if self.forward.size <= 65536 else np.int64)
        if not self.compressed:
            return model_codes.astype(dtype, copy=False)
        out = np.empty(model_codes.shape[0], dtype=dtype)
        in_bucket = model_codes == self.kept.size
        out[~in_bucket] = self.kept[model_codes[~in_bucket]]
        rows = np.flatnonzero(in_bucket)
        m = int(rows.size)
        if m:
            if keys is None:
                rows = rows[rng.permutation(m)]
                sub = None
            else:  # ties on every key are identical records: no shuffle needed
                if isinstance(keys, np.ndarray):
                    keys = [keys[:, j] for j in range(keys.shape[1])]
                sub = [np.asarray(c)[rows] for c in keys]
            draws = stratified_draw(
                self.merged_probs[None, :], np.zeros(m, dtype=np.int64), rng, sub, key_sizes
            )
            out[rows] = self.merged[draws]
        return out


def simplex_projection(y: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``y`` onto ``{x >= 0, sum(x) = total}`` (sort-based, O(n log n))."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size == 0 or not total > 0:
        return np.zeros_like(y)
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - total
    j = np.arange(1, y.size + 1)
    ok = u - css / j > 0
    r = int(np.flatnonzero(ok)[-1]) + 1 if ok.any() else 1  # ok[0] holds unless total underflows
    tau = css[r - 1] / r
    return np.clip(y - tau, 0.0, None)
