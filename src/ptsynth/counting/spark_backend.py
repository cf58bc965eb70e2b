"""The Spark counting backend: every count computed where the records lie, summed on the driver.

Why: a release needs counts, never records (see :mod:`ptsynth.counting.backend`). On a cluster
the encoded records stay in the executors, one numpy block per partition (built once by
:mod:`ptsynth.ingest.spark` and cached); each counting request is **one Spark job** that runs
the numpy backend's own code on every partition
(:class:`~ptsynth.counting.blocks.BlockCounter`, :func:`~ptsynth.counting.numpy_backend.bounded_codes`,
:func:`~ptsynth.counting.prf.record_hash`) and sums the partitions' integer count vectors with
``treeReduce``. Integer sums do not depend on how records are partitioned or ordered, and the
per-record choices (contribution bound, holdout, evaluation sample) are keyed PRFs of the
records' content, so the counts are **bit-identical** to the local backend's on the same data:
a seeded release is the same whichever backend ran it. Noise is drawn on the driver, through
the :class:`~ptsynth.privacy.Accountant`, as locally.

What travels to the driver: count vectors (one per partition per job, summed pairwise in the
executors first), record counts, and only for the private evaluation
(:meth:`SparkBackend.sample_table`) a fixed-size sample of records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.counting import prf
from ptsynth.counting.blocks import BlockCounter
from ptsynth.counting.keys import cell_key
from ptsynth.counting.numpy_backend import (
    bounded_codes,
    combination_counts,
    narrow_dtype,
    present_histogram,
    recode,
)
from ptsynth.table import ColumnDomain, EncodedTable, IngestSummary

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource

#: One element of the cached RDD: a partition's codes (n, d), occurrence indices, file rows.
Block = tuple[np.ndarray, np.ndarray, np.ndarray]


def _to_blocks(d: int, dtype: str) -> Callable:
    """mapInArrow function: a partition's rows → one row holding its numpy arrays as bytes."""
    import pyarrow as pa

    def run(batches: Any) -> Any:
        codes, occ, row = [], [], []
        for b in batches:
            if b.num_rows == 0:
                continue
            codes.append(np.stack([b.column(f"c{j}").to_numpy(zero_copy_only=False)
                                   for j in range(d)], axis=1).astype(dtype))
            occ.append(b.column("occ").to_numpy(zero_copy_only=False).astype(np.int64))
            row.append(b.column("row").to_numpy(zero_copy_only=False).astype(np.int64))
        if not codes:
            return
        c = np.concatenate(codes)
        yield pa.RecordBatch.from_arrays(
            [pa.array([np.ascontiguousarray(c).tobytes()], pa.binary()),
             pa.array([np.concatenate(occ).tobytes()], pa.binary()),
             pa.array([np.concatenate(row).tobytes()], pa.binary()),
             pa.array([c.shape[0]], pa.int64())],
            names=["codes", "occ", "row", "n"],
        )

    return run


def _unblock(d: int, dtype: str) -> Callable:
    def run(r: Any) -> Block:
        n = int(r["n"])
        codes = np.frombuffer(bytes(r["codes"]), dtype=dtype).reshape(n, d)
        return (codes, np.frombuffer(bytes(r["occ"]), dtype=np.int64),
                np.frombuffer(bytes(r["row"]), dtype=np.int64))

    return run


class SparkBackend:
    """:class:`~ptsynth.counting.backend.CountingBackend` over records cached in Spark.

    Build it with :func:`ptsynth.ingest.spark.read_spark` (or :meth:`from_frame` over a frame
    of ``row``, ``c0..c{d-1}``, ``occ`` columns).
    """

    name = "spark"

    def __init__(self, spark: Any, rdd: Any, domains: Sequence[ColumnDomain], n: int) -> None:
        self.spark = spark
        self.rdd = rdd
        self.domains = tuple(domains)
        self._n = int(n)
        #: How the records were read (private; set by :func:`ptsynth.ingest.spark.read_spark`).
        self.summary: IngestSummary | None = None

    def __repr__(self) -> str:
        return f"SparkBackend({self._n} records x {len(self.domains)} columns)"

    @classmethod
    def from_frame(cls, spark: Any, frame: Any, domains: Sequence[ColumnDomain], *,
                   partitions: int | None = None) -> SparkBackend:
        d = len(domains)
        dtype = narrow_dtype([dom.size for dom in domains]).str
        parts = int(partitions or spark.sparkContext.defaultParallelism)
        blobs = (frame.select("row", "occ", *[f"c{j}" for j in range(d)])
                 .repartition(parts)
                 .mapInArrow(_to_blocks(d, dtype), "codes binary, occ binary, row binary, n long"))
        rdd = blobs.rdd.map(_unblock(d, dtype)).persist()
        n = rdd.map(lambda b: b[0].shape[0]).sum() if not rdd.isEmpty() else 0
        return cls(spark, rdd, domains, int(n))

    def _derived(self, rdd: Any, domains: Sequence[ColumnDomain] | None = None) -> SparkBackend:
        rdd = rdd.persist()
        n = rdd.map(lambda b: b[0].shape[0]).sum() if not rdd.isEmpty() else 0
        return SparkBackend(self.spark, rdd, domains or self.domains, int(n))

    def _sum(self, kernel: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
             size: int) -> np.ndarray:
        """One job: ``kernel`` on every partition, integer vectors summed (tree reduction)."""
        if self._n == 0:
            return np.zeros(size, dtype=np.int64)
        depth = 2 if self.rdd.getNumPartitions() > 16 else 1
        out = self.rdd.map(lambda b: kernel(*b)).treeReduce(np.add, depth=depth)
        return np.asarray(out, dtype=np.int64)

    # -- counts ---------------------------------------------------------------------------
    def record_count(self) -> int:
        return self._n

    def marginals(self, column_sets: Sequence[Sequence[int]]) -> list[np.ndarray]:
        sets = [tuple(int(c) for c in s) for s in column_sets]
        sizes = [dom.size for dom in self.domains]
        shapes = [[sizes[c] for c in s] for s in sets]
        cells = [int(np.prod(sh, dtype=np.int64)) for sh in shapes]
        if not sets:
            return []

        def kernel(codes: np.ndarray, occ: np.ndarray, row: np.ndarray) -> np.ndarray:
            counter = BlockCounter([codes[:, j] for j in range(codes.shape[1])], sizes)
            return np.concatenate([m.ravel() for m in counter.marginals(sets)])

        flat = self._sum(kernel, sum(cells))
        out, start = [], 0
        for sh, c in zip(shapes, cells, strict=True):
            out.append(flat[start:start + c].reshape(sh))
            start += c
        return out

    def present_attribute_histogram(self) -> np.ndarray:
        domains, d = self.domains, len(self.domains)
        return self._sum(lambda codes, occ, row: present_histogram(codes, domains, d), d + 1)

    def recoded(self, maps: Sequence[np.ndarray], domains: Sequence[ColumnDomain]
                ) -> SparkBackend:
        if len(maps) != len(self.domains) or len(domains) != len(self.domains):
            raise ValueError("one code map and one domain per column")
        maps = [np.asarray(m) for m in maps]
        new = tuple(domains)
        rdd = self.rdd.map(lambda b: (recode(b[0], maps, new), b[1], b[2]))
        return self._derived(rdd, new)

    def combination_counter(self, max_attributes: int | None, rng: RandomSource | None
                            ) -> SparkCombinationCounter:
        key = None
        if max_attributes is not None and max_attributes < len(self.domains):
            if rng is None:
                raise ValueError("a contribution bound needs a RandomSource")
            key = prf.draw_key(rng)
        return SparkCombinationCounter(self, max_attributes, key)

    # -- keyed subsets ----------------------------------------------------------------------
    def split(self, fraction: float, key: tuple[int, int]
              ) -> tuple[SparkBackend, SparkBackend | None]:
        if fraction <= 0:
            return self, None
        sizes = [dom.size for dom in self.domains]

        def held(b: Block) -> np.ndarray:
            h = prf.record_hash(key, b[0], sizes, b[1], prf.PURPOSE_HOLDOUT)
            return prf.to_unit(h) < fraction

        def part(b: Block, keep: bool) -> Block:
            m = held(b) != keep
            return b[0][m], b[1][m], b[2][m]

        keep = self.rdd.map(lambda b: part(b, True)).filter(lambda b: b[0].shape[0] > 0)
        hold = self.rdd.map(lambda b: part(b, False)).filter(lambda b: b[0].shape[0] > 0)
        return self._derived(keep), self._derived(hold)

    def sample_table(self, max_records: int, key: tuple[int, int]) -> EncodedTable:
        """The records with the ``max_records`` smallest keyed PRF values, in file order (the
        local backend's table order); all records when there are no more than that."""
        d = len(self.domains)
        sizes = [dom.size for dom in self.domains]
        dtype = narrow_dtype(sizes)
        if self._n <= max_records:
            parts = self.rdd.map(lambda b: (b[0], b[2])).collect()
            codes = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, d), dtype)
            rows = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            return EncodedTable(codes[np.argsort(rows, kind="stable")], self.domains)
        share = min(1.0, (max_records + 4.0 * np.sqrt(max_records) + 16.0) / self._n)
        while True:
            limit = np.uint64(min(2**64 - 1, int(share * 2.0**64)))

            def below(b: Block, limit: np.uint64 = limit) -> tuple[np.ndarray, ...]:
                h = prf.record_hash(key, b[0], sizes, b[1], prf.PURPOSE_EVALUATION)
                m = h < limit
                return b[0][m], b[2][m], h[m]

            parts = self.rdd.map(below).collect()
            h = np.concatenate([p[2] for p in parts])
            if h.size >= max_records or share >= 1.0:
                break
            share = min(1.0, share * 2.0)
        codes = np.concatenate([p[0] for p in parts])
        rows = np.concatenate([p[1] for p in parts])
        pick = np.argsort(h, kind="stable")[:max_records]
        pick = pick[np.argsort(rows[pick], kind="stable")]
        return EncodedTable(codes[pick], self.domains)


class SparkCombinationCounter:
    """Combination counts with each record's contribution bounded by the keyed PRF (as the
    numpy backend's :class:`~ptsynth.counting.numpy_backend.NumpyCombinationCounter`)."""

    def __init__(self, backend: SparkBackend, max_attributes: int | None,
                 key: tuple[int, int] | None) -> None:
        self.backend, self.max_attributes, self.key = backend, max_attributes, key

    def combination_counts(self, columns: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, int]:
        cand_cols, cand_codes = np.asarray(columns), np.asarray(codes)
        n_cand = cand_cols.shape[0]
        if n_cand == 0:
            return np.zeros(0, dtype=np.int64), 0
        domains, m, key = self.backend.domains, self.max_attributes, self.key
        radix = np.array([len(dom.labels) + 1 for dom in domains], dtype=np.int64)

        def kernel(part: np.ndarray, occ: np.ndarray, row: np.ndarray) -> np.ndarray:
            work = bounded_codes(part, domains, m, key, occ)
            cols = [np.ascontiguousarray(work[:, j]) for j in range(work.shape[1])]
            return combination_counts(BlockCounter(cols, radix), cols, radix, cand_cols,
                                      cand_codes)[0]

        counts = self.backend._sum(kernel, n_cand)
        n_sets = int(np.unique(cell_key(cand_cols, [len(domains)] * cand_cols.shape[1])).size)
        return counts, n_sets
