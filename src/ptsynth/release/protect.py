"""k-anonymity checks and enforcement on released (synthetic or published) tables.

Why, beside DP: CTDC's data-sharing rules and many data stewards require that no published
combination of quasi-identifier (QI) values describes fewer than k records. DP bounds what an
attacker learns; k-anonymity is the rule reviewers check line by line. Both are applied.

Combinations follow the aggregate release (Synthetic Data Showcase): a combination of length ℓ
is a set of ℓ *present* QI values on distinct columns (a missing value is absent, never part of
a combination). A table is k-anonymous at reporting length L when every combination of up to L
present QI values that occurs in it occurs at least k times.

Enforcement is by suppression (set a QI value to missing), choosing per offending record the
value that takes part in the most violating combinations at the shortest violating length
(ties: the rarest value, then at random with the given RandomSource), and repeating until the
check passes. Every round removes at least one present QI value or one record, so it terminates.
Counts only fall when values are removed, so a violating combination can only be fixed by
taking it out of each record that holds it; if all its columns forbid missing values, those
records are dropped (and reported).

These functions read the table they are given exactly (no noise): run them on released tables,
or on real data only as a private-side check whose results stay with the data steward.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.counting import cell_key, n_cells
from ptsynth.counting.keys import MAX_CELLS
from ptsynth.table import EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource

#: Dense bincount up to this many cells (or 4 per record); sparse ``np.unique`` beyond.
_DENSE_CELLS = 1 << 20


def _row_counts(codes: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """For each row, how many rows share its values on these columns (vectorised)."""
    n = codes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    cells = n_cells(sizes)
    if cells <= max(_DENSE_CELLS, 4 * n) and cells < MAX_CELLS:
        key = cell_key(codes, sizes)
        return np.bincount(key, minlength=cells)[key]
    if cells < MAX_CELLS:
        key = cell_key(codes, sizes)
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
    else:
        _, inv, cnt = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return cnt[inv.ravel()]


def _scan(
    codes: np.ndarray, present: np.ndarray, sizes: Sequence[int], k: int, length: int
) -> tuple[list[tuple[tuple[int, ...], np.ndarray, np.ndarray]], int | None]:
    """For each column subset of ``length``: (subset, per-row count, violating-row mask), and the
    smallest count of an occurring combination."""
    out = []
    smallest: int | None = None
    q = codes.shape[1]
    for subset in itertools.combinations(range(q), length):
        cols = list(subset)
        valid = present[:, cols].all(axis=1)
        if not valid.any():
            continue
        cnt = _row_counts(codes[:, cols], [sizes[c] for c in cols])
        m = int(cnt[valid].min())
        smallest = m if smallest is None else min(smallest, m)
        out.append((subset, cnt, valid & (cnt < k)))
    return out, smallest


def _validate(table: EncodedTable, columns: Sequence[str | int], k: int, reporting_length: int):
    if k < 1:
        raise ValueError("k must be at least 1")
    if reporting_length < 1:
        raise ValueError("reporting_length must be at least 1")
    idx = list(table.indices(columns))
    if len(set(idx)) != len(idx):
        raise ValueError("quasi-identifier columns are repeated")
    return idx


def _present(table: EncodedTable, idx: list[int]) -> np.ndarray:
    codes = table.codes[:, idx]
    present = np.ones(codes.shape, dtype=bool)
    for p, j in enumerate(idx):
        mc = table.domains[j].missing_code
        if mc is not None:
            present[:, p] = codes[:, p] != mc
    return present


def check_k_anonymity(
    table: EncodedTable, columns: Sequence[str | int], *, k: int, reporting_length: int
) -> dict[str, Any]:
    """Check that every combination of up to ``reporting_length`` present values of ``columns``
    occurring in ``table`` occurs at least ``k`` times.

    Returns ``ok``, ``smallest_count`` (``None`` when no combination occurs), ``violations``
    (number of distinct violating combinations per length), ``violating_rows`` (per length),
    ``rows_affected`` (rows holding any violating combination), and the parameters. Counts and
    column names only, never a value.
    """
    idx = _validate(table, columns, k, reporting_length)
    codes = np.asarray(table.codes[:, idx], dtype=np.int64)
    sizes = [table.domains[j].size for j in idx]
    present = _present(table, idx)
    violations: dict[int, int] = {}
    violating_rows: dict[int, int] = {}
    affected = np.zeros(table.n_records, dtype=bool)
    smallest: int | None = None
    for ell in range(1, reporting_length + 1):
        violations[ell], violating_rows[ell] = 0, 0
    for ell in range(1, min(reporting_length, len(idx)) + 1):
        scans, sm = _scan(codes, present, sizes, k, ell)
        if sm is not None:
            smallest = sm if smallest is None else min(smallest, sm)
        n_combos = 0
        rows_ell = np.zeros(table.n_records, dtype=bool)
        for subset, _cnt, viol in scans:
            if viol.any():
                cols = list(subset)
                n_combos += int(np.unique(codes[viol][:, cols], axis=0).shape[0])
                rows_ell |= viol
        violations[ell] = n_combos
        violating_rows[ell] = int(rows_ell.sum())
        affected |= rows_ell
    return {
        "ok": not affected.any(),
        "k": int(k),
        "reporting_length": int(reporting_length),
        "columns": [table.domains[j].name for j in idx],
        "n_records": table.n_records,
        "smallest_count": smallest,
        "violations": violations,
        "violating_rows": violating_rows,
        "rows_affected": int(affected.sum()),
    }


def enforce_k_anonymity(
    table: EncodedTable,
    columns: Sequence[str | int],
    *,
    k: int,
    reporting_length: int,
    rng: RandomSource,
) -> tuple[EncodedTable, dict[str, Any]]:
    """Suppress QI values (and drop records where a violating combination cannot be suppressed)
    until :func:`check_k_anonymity` passes. See the module docstring for the choice rule.

    Returns the protected table and a report: suppressed cells (count and share of the present
    QI values), records with at least one suppression, dropped records, rounds, and the final
    check (``check["ok"]`` is always true).
    """
    idx = _validate(table, columns, k, reporting_length)
    q = len(idx)
    sizes = [table.domains[j].size for j in idx]
    missing = np.array(
        [
            -1 if table.domains[j].missing_code is None else table.domains[j].missing_code
            for j in idx
        ],
        dtype=np.int64,
    )
    suppressible = missing >= 0
    full = np.array(table.codes, copy=True)
    codes = np.asarray(full[:, idx], dtype=np.int64)
    keep = np.ones(table.n_records, dtype=bool)
    present = _present(table, idx)
    present_before = int(present.sum())
    touched = np.zeros(table.n_records, dtype=bool)
    suppressed = 0
    rounds = 0
    max_len = min(reporting_length, q)
    while True:
        rows = np.flatnonzero(keep)
        sub_codes, sub_present = codes[rows], present[rows]
        found = False
        for ell in range(1, max_len + 1):
            scans, _ = _scan(sub_codes, sub_present, sizes, k, ell)
            degree = np.zeros((rows.size, q), dtype=np.int64)
            drop = np.zeros(rows.size, dtype=bool)
            for subset, _cnt, viol in scans:
                if not viol.any():
                    continue
                cols = list(subset)
                degree[:, cols] += viol[:, None]
                if not suppressible[cols].any():
                    drop |= viol
            violating = degree.any(axis=1)
            if not violating.any():
                continue
            found = True
            rounds += 1
            # rows whose violation can only be fixed by removing the record
            keep[rows[drop]] = False
            fix = violating & ~drop
            if fix.any():
                r = np.flatnonzero(fix)
                # rarity of each value among the kept rows (1-way count), for tie-breaking
                rarity = np.zeros((r.size, q), dtype=np.float64)
                for p in range(q):
                    cnt = _row_counts(sub_codes[:, [p]], [sizes[p]])
                    rarity[:, p] = cnt[r]
                score = degree[r].astype(np.float64)
                score -= rarity / (rows.size + 1.0)  # prefer the rarer value on equal degree
                score += (
                    np.asarray(rng.uniform(r.size * q)).reshape(r.size, q)
                    * 1e-3
                    / (rows.size + 1.0)
                )
                ok = (degree[r] > 0) & suppressible[None, :] & sub_present[r]
                score = np.where(ok, score, -np.inf)
                col = np.argmax(score, axis=1)
                g = rows[r]
                codes[g, col] = missing[col]
                present[g, col] = False
                full[g, np.asarray(idx)[col]] = missing[col]
                touched[g] = True
                suppressed += int(r.size)
            break
        if not found:
            break
    out = EncodedTable(full[keep], table.domains)
    dropped = int((~keep).sum())
    final = check_k_anonymity(out, idx, k=k, reporting_length=reporting_length)
    if not final["ok"]:  # pragma: no cover - guaranteed by construction
        raise RuntimeError("internal error: k-anonymity enforcement did not converge")
    n = table.n_records
    return out, {
        "k": int(k),
        "reporting_length": int(reporting_length),
        "columns": [table.domains[j].name for j in idx],
        "n_records_in": n,
        "n_records_out": out.n_records,
        "suppressed_cells": suppressed,
        "suppressed_cell_share": suppressed / present_before if present_before else 0.0,
        "records_with_suppression": int((touched & keep).sum()),
        "record_suppression_share": float((touched & keep).sum()) / n if n else 0.0,
        "dropped_records": dropped,
        "dropped_share": dropped / n if n else 0.0,
        "rounds": rounds,
        "check": final,
    }
