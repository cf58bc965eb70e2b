"""k-anonymity checks and enforcement on released (synthetic or published) tables.

Why, beside DP: CTDC's data-sharing rules and many data stewards require that no published
combination of quasi-identifier (QI) values describes fewer than k records. DP bounds what an
attacker learns; k-anonymity is the rule reviewers check line by line. Both are applied.

Combinations follow the aggregate release (Synthetic Data Showcase): a combination of length ℓ
is a set of ℓ *present* QI values on distinct columns (a missing value is absent, never part of
a combination). A table is k-anonymous at reporting length L when every combination of up to L
present QI values that occurs in it occurs at least k times.

**Enforcement** changes as little as it can, cheapest first (measured in
``benchmarks/protect.py``; blanking cells, the earlier method, blanked 29% of the QI cells of
the README's demo and erased whole countries):

1. *Recode* (:mod:`ptsynth.release.recode`): combinations are eliminated smallest first (those
   with 1 record, then 2, ... up to k-1, the schedule :func:`thresholds`); a record in an
   eliminated combination changes **one** QI value to another value whose combinations all
   occur and are not eliminated, drawn in proportion to how plausible it is given the
   record's other columns, raked toward the shares before enforcement. Records only move
   into combinations that exist, so small ones that receive records can reach k and stay.
   A category (a value of one QI) with at least k records keeps at least
   ``max(k, half its records)``: its records change their other values instead.
2. Records with no such single change take the QI values of the nearest record (fewest
   differing QI values) whose combinations all occur at least k times (*copied*).
3. Records of a protected category with no such neighbour are grouped, k or more at a time,
   and take their group's most common values (*aggregated*: a group is one combination of at
   least k records).
4. With a ``redraw`` callable (the synthesizer's sampler: post-processing), records left are
   replaced by fresh model records whose combinations all occur at least k times.
5. Last resort: *suppression* of one present value (set to missing), or, where every column
   of the combination forbids missing, *dropping* the record. This step alone always
   terminates (each round removes a present value or a record); it also runs after the
   rounds above are exhausted, so enforcement always ends with a table that passes
   :func:`check_k_anonymity`.
6. *Rebalance* (:mod:`ptsynth.release.rebalance`), once the table is k-anonymous: groups of k
   records refill QI combinations that held k or more records before enforcement and lost
   them (a common pair whose records all sat in rare triples), and single values move back,
   wherever that keeps the table k-anonymous and brings the QI shares, QI pairs and triples
   and the QI-by-other-column tables closer to the table before enforcement. On the README's
   demo this halves what enforcement adds to the 3-way TVD (``benchmarks/README.md``).

No step moves a record into a combination the schema declares impossible (structural zeros,
``[[hierarchies]]`` / ``[[constraints]]``): recoding skips such values, and a copy, group or
redraw that would land in one is not made. Suppression cannot create one (missing is in none).

The report says what changed: records changed, cells recoded and suppressed per column, records
copied, aggregated, redrawn, rebalanced and dropped, blank shares before and after, categories that
disappeared. Counts and public column names and labels only, never a record.

Declared generalisation hierarchies (ARX-style; not in the schema yet) plug in at two places:
as a prior in :meth:`ptsynth.release.recode.PairModel.log_weights` (prefer a value under the
same parent: a neighbouring year, a country of the same region), and as a step in
:data:`STEPS` before suppression that recodes a column's values to their parent for every
record (global recoding, which changes the released domain, so the schema must carry it).

Cost: every count is kept over the distinct QI profiles (:mod:`ptsynth.release.qi_counts`),
so a round costs ``O(profiles x subsets + changed records)`` and memory is a few arrays of one
entry per record; nothing loops over records in Python.

These functions read the table they are given exactly (no noise): run them on released tables,
or on real data only as a private-side check whose results stay with the data steward. The
enforcement never sees real records: its inputs are the synthetic table and, optionally, a
sampler of the fitted model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.release.qi_counts import QICounts
from ptsynth.release.rebalance import MAX_PARTNERS, rebalance
from ptsynth.release.recode import PairModel
from ptsynth.table import EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource
    from ptsynth.structure import StructuralZero

#: ``redraw(m)`` returns m fresh records from the fitted model (same domains as the table).
Redraw = Callable[[int], EncodedTable]

#: The enforcement steps before the last resort, cheapest first (see the module docstring).
STEPS = ("recode", "copy", "aggregate", "redraw", "rebalance")

#: Preference for changing the column that takes part in the most eliminated combinations:
#: each combination it leaves unfixed multiplies the weight by this.
COVERAGE = 0.1
#: Rounds per threshold of the recode schedule, and rounds of the phase at k-1 (each round
#: handles every offending record at once; the rounds only chase knock-on effects).
MAX_ROUNDS_PER_THRESHOLD = 25
MAX_FINAL_ROUNDS = 40
#: Donor search: at most this many candidate profiles (a weighted sample beyond), and
#: distances to at most this many (record, candidate) pairs at a time.
DONOR_CANDIDATES = 4096
DONOR_PAIRS = 1 << 22
#: Extra distance, in changed values, for each value a neighbour would blank.
BLANK_COST = 1.0
#: Records recoded per batch (the weights are a (records x values) array).
RECODE_CHUNK = 1 << 16
#: Fresh records drawn per record to replace, and attempts, when redrawing.
REDRAW_FACTOR = 4
REDRAW_ATTEMPTS = 6


def model_redraw(synth: Any, rng: RandomSource) -> Redraw:
    """A ``redraw`` for :func:`enforce_k_anonymity`: fresh records from the fitted model.

    Sampling is post-processing of the DP model; no real record can enter. The draws come from
    a copy of the synthesizer (made on first use), so that its diagnostics keep describing the
    release's own sample.
    """
    holder: list[Any] = []

    def draw(m: int) -> EncodedTable:
        if not holder:
            holder.append(copy.deepcopy(synth))
        return holder[0].sample(int(m), rng)

    return draw


def thresholds(k: int) -> list[int]:
    """Counts at which combinations are eliminated, in order: 1, 2, ... k-1 for k <= 11, else
    ten steps ending at k-1 (each step is one scan of all combinations)."""
    if k <= 1:
        return []
    if k <= 11:
        return list(range(1, k))
    return sorted({max(1, math.ceil((k - 1) * i / 10)) for i in range(1, 11)})


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def _validate(table: EncodedTable, columns: Sequence[str | int], k: int, reporting_length: int):
    if k < 1:
        raise ValueError("k must be at least 1")
    if reporting_length < 1:
        raise ValueError("reporting_length must be at least 1")
    idx = list(table.indices(columns))
    if len(set(idx)) != len(idx):
        raise ValueError("quasi-identifier columns are repeated")
    for j in idx:
        if not 0 <= j < table.n_columns:
            raise KeyError(f"no column with index {j}")
    return idx


def _missing(table: EncodedTable, idx: Sequence[int]) -> np.ndarray:
    return np.array([-1 if table.domains[j].missing_code is None else table.domains[j].missing_code
                     for j in idx], dtype=np.int64)


def check_k_anonymity(
    table: EncodedTable, columns: Sequence[str | int], *, k: int, reporting_length: int
) -> dict[str, Any]:
    """Check that every combination of up to ``reporting_length`` present values of ``columns``
    occurring in ``table`` occurs at least ``k`` times.

    Returns ``ok``, ``smallest_count`` (``None`` when no combination occurs), ``violations``
    (number of distinct violating combinations per length), ``violating_rows`` (per length),
    ``rows_affected`` (rows holding any violating combination), and the parameters. Counts and
    column names only, never a value. ``O(n)`` time (one hash of the QI profiles), then
    ``O(profiles)`` per column subset.
    """
    idx = _validate(table, columns, k, reporting_length)
    violations = {ell: 0 for ell in range(1, reporting_length + 1)}
    violating_rows = {ell: 0 for ell in range(1, reporting_length + 1)}
    smallest: int | None = None
    affected = 0
    if idx and table.n_records:
        codes = table.codes[:, idx]
        qc = QICounts(codes, [table.domains[j].size for j in idx], _missing(table, idx),
                      reporting_length)
        live = qc.live()
        vec = qc.index.vectors[live]
        weight = qc.weight[live]
        bad_any = np.zeros(live.size, dtype=bool)
        bad_len = {ell: np.zeros(live.size, dtype=bool) for ell in violating_rows}
        for s, cells in zip(qc.subsets, qc.cells, strict=True):
            occurring = cells.counts[cells.counts > 0]
            if occurring.size:
                m = int(occurring.min())
                smallest = m if smallest is None else min(smallest, m)
            violations[len(s)] += int(((cells.counts > 0) & (cells.counts < k)).sum())
            keys, present = qc.keys(vec, s)
            hit = present & (cells.count(keys) < k)
            bad_len[len(s)] |= hit
            bad_any |= hit
        for ell, mask in bad_len.items():
            violating_rows[ell] = int(weight[mask].sum())
        affected = int(weight[bad_any].sum())
    return {
        "ok": affected == 0,
        "k": int(k),
        "reporting_length": int(reporting_length),
        "columns": [table.domains[j].name for j in idx],
        "n_records": table.n_records,
        "smallest_count": smallest,
        "violations": violations,
        "violating_rows": violating_rows,
        "rows_affected": affected,
    }


# ---------------------------------------------------------------------------------------------
# enforcement
# ---------------------------------------------------------------------------------------------
class _Enforcer:
    """State of one enforcement run; see the module docstring for the steps."""

    def __init__(self, table: EncodedTable, idx: list[int], k: int, reporting_length: int,
                 rng: RandomSource, redraw: Redraw | None, steps: Sequence[str],
                 in_place: bool = False, zeros: Sequence[StructuralZero] = ()) -> None:
        self.table = table
        # structural zeros as (column indices, code sets); boxes over absent columns cannot apply
        names = [d.name for d in table.domains]
        self.zeros = [(z.indices(names), [np.asarray(c, dtype=np.int64) for c in z.codes])
                      for z in zeros if set(z.columns) <= set(names)]
        self.steps = tuple(steps)
        self.k = int(k)
        self.rng = rng
        self.redraw = redraw
        self.qi = np.asarray(idx, dtype=np.int64)
        self.q = len(idx)
        self.sizes = [table.domains[j].size for j in idx]
        self.missing = _missing(table, idx)
        codes = np.asarray(table.codes)
        self.before_q = np.array(codes[:, idx], copy=True)  # for the report
        self.full = codes if in_place and codes.flags.writeable else np.array(codes, copy=True)
        n = table.n_records
        self.keep = np.ones(n, dtype=bool)
        self.redrawn = np.zeros(n, dtype=bool)
        self.copied = np.zeros(n, dtype=bool)
        self.aggregated = np.zeros(n, dtype=bool)
        self.counts = QICounts(self.before_q, self.sizes, self.missing, reporting_length)
        self.pairs = PairModel(self.full, idx, [d.size for d in table.domains])
        self.by_column = [
            [i for i, s in enumerate(self.counts.subsets) if p in s] for p in range(self.q)
        ]
        # 1-way counts before enforcement: which categories are protected, and their floor
        self.one_before = [self._one_way(p).copy() for p in range(self.q)]
        self.floor = [np.where(c >= self.k, np.maximum(self.k, (c + 1) // 2), 0)
                      for c in self.one_before]
        self.violating_before = 0
        self.rounds = 0
        self.rebalanced = np.zeros(n, dtype=bool)
        self.undo_rebalance: tuple[np.ndarray, np.ndarray] | None = None
        self.rebalance_note = ""
        self.weight_before = self.counts.weight.copy()  # per QI profile (ids only get appended)

    # -- helpers ---------------------------------------------------------------------------
    def _one_way(self, p: int) -> np.ndarray:
        cells = self.counts.cells[self.counts.subsets.index((p,))]
        out = np.zeros(self.sizes[p], dtype=np.int64)
        if cells.dense:
            out[: cells.counts.size] = cells.counts[: self.sizes[p]]
        else:  # pragma: no cover - a 1-column domain is never sparse
            out[cells.keys] = cells.counts
        return out

    def _guarded(self, p: int, values: np.ndarray) -> np.ndarray:
        """Records holding these values of QI ``p`` may not leave them (protected category)."""
        now = self._one_way(p)
        present = values != self.missing[p]
        v = np.where(present, values, 0)
        return present & (self.floor[p][v] > 0) & (now[v] <= self.floor[p][v])

    def _violating(self) -> tuple[np.ndarray, np.ndarray]:
        """Kept records in an eliminated combination, and their per-QI-column degrees."""
        prof, degree = self.counts.violating_profiles()
        if prof.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.q), dtype=np.int32)
        pos = np.full(self.counts.index.size + 1, -1, dtype=np.int64)
        pos[prof] = np.arange(prof.size)
        rows = np.flatnonzero(pos[self.counts.profile] >= 0)
        return rows, degree[pos[self.counts.profile[rows]]]

    def _impossible(self, codes: np.ndarray) -> np.ndarray:
        """Which of these records lie in a declared structural zero (the schema's impossible
        combinations): no step may create one. Blanks never do (missing is in no zero)."""
        bad = np.zeros(codes.shape[0], dtype=bool)
        for cols, sets in self.zeros:
            hit = np.ones(codes.shape[0], dtype=bool)
            for j, allowed in zip(cols, sets, strict=True):
                hit &= np.isin(codes[:, j], allowed)
            bad |= hit
        return bad

    def _zero_values(self, codes: np.ndarray, p: int) -> np.ndarray:
        """For records ``codes`` (all columns), which values of QI ``p`` would put them in a
        structural zero (shape ``(m, size_p)``)."""
        j = int(self.qi[p])
        out = np.zeros((codes.shape[0], self.sizes[p]), dtype=bool)
        for cols, sets in self.zeros:
            if j not in cols:
                continue
            rest = np.ones(codes.shape[0], dtype=bool)
            for c, allowed in zip(cols, sets, strict=True):
                if c != j:
                    rest &= np.isin(codes[:, c], allowed)
            values = np.zeros(self.sizes[p], dtype=bool)
            values[sets[cols.index(j)]] = True
            out |= rest[:, None] & values[None, :]
        return out

    def _replace(self, rows: np.ndarray, new: np.ndarray | None) -> None:
        """Records ``rows`` take the codes ``new`` (all columns; ``None``: dropped)."""
        if rows.size == 0:
            return
        old = self.full[rows]
        self.counts.move(rows, old[:, self.qi], None if new is None else new[:, self.qi])
        counted = self.pairs.in_tables(rows)
        self.pairs.update(old[counted], None if new is None else new[counted])
        if new is None:
            self.keep[rows] = False
        else:
            self.full[rows] = new

    def _allowed_values(self, rows_q: np.ndarray, p: int) -> np.ndarray:
        """For records with QI codes ``rows_q``, which values of QI ``p`` keep every combination
        through ``p`` occurring and not eliminated (shape ``(m, size_p)``)."""
        m, size = rows_q.shape[0], self.sizes[p]
        ok = np.ones((m, size), dtype=bool)
        if self.missing[p] >= 0:
            ok[:, self.missing[p]] = False
        values = np.arange(size, dtype=np.int64)
        for i in self.by_column[p]:
            s = self.counts.subsets[i]
            strides = self.counts.strides(s)
            others = [c for c in s if c != p]
            present = self.counts.present(rows_q, others)
            base = np.zeros(m, dtype=np.int64)
            for c, st in zip(s, strides, strict=True):
                if c != p:
                    base += rows_q[:, c].astype(np.int64) * st
            keys = base[:, None] + values[None, :] * strides[s.index(p)]
            allowed = self.counts.cells[i].allowed(keys.ravel()).reshape(m, size)
            ok &= allowed | ~present[:, None]
        return ok

    # -- step 1: recode one value ------------------------------------------------------------
    def recode(self, rows: np.ndarray, degree: np.ndarray) -> np.ndarray:
        """Recode what can be recoded; returns the records left as they were. Records are
        taken :data:`RECODE_CHUNK` at a time (bounded memory; later chunks see the counts
        after the earlier ones moved)."""
        if "recode" not in self.steps:
            return rows
        left = [self._recode_chunk(rows[i:i + RECODE_CHUNK], degree[i:i + RECODE_CHUNK])
                for i in range(0, rows.size, RECODE_CHUNK)]
        return np.concatenate(left) if left else rows

    def _recode_chunk(self, rows: np.ndarray, degree: np.ndarray) -> np.ndarray:
        m = rows.size
        codes = self.full[rows]
        rq = codes[:, self.qi]
        maxdeg = degree.max(axis=1)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        logw = np.full((m, int(offsets[-1])), -np.inf)
        for p in range(self.q):
            cur = rq[:, p].astype(np.int64)
            cand = np.flatnonzero((degree[:, p] > 0) & (cur != self.missing[p])
                                  & ~self._guarded(p, cur))
            if cand.size == 0:
                continue
            ok = self._allowed_values(rq[cand], p)
            ok[np.arange(cand.size), cur[cand]] = False
            if self.zeros:
                ok &= ~self._zero_values(codes[cand], p)
            has = ok.any(axis=1)
            cand, ok = cand[has], ok[has]
            if cand.size == 0:
                continue
            lw = self.pairs.log_weights(codes[cand], int(self.qi[p]))
            lw += (degree[cand, p] - maxdeg[cand])[:, None] * math.log(COVERAGE)
            block = logw[:, offsets[p]:offsets[p + 1]]
            block[cand] = np.where(ok, lw, -np.inf)
        movable = np.isfinite(logw).any(axis=1)
        if not movable.any():
            return rows
        lw = logw[movable]
        w = np.exp(lw - lw.max(axis=1, keepdims=True))
        pick = self.rng.choice_weighted(w)
        col = np.searchsorted(offsets, pick, side="right") - 1
        new = codes[movable].copy()
        new[np.arange(pick.size), self.qi[col]] = pick - offsets[col]
        self._replace(rows[movable], new)
        return rows[~movable]

    # -- step 2: copy the QI values of the nearest safe record -------------------------------
    def copy_nearest(self, rows: np.ndarray) -> np.ndarray:
        if rows.size == 0 or "copy" not in self.steps:
            return rows
        self.counts.eliminate_upto(self.k - 1)  # eliminated now means "fewer than k"
        safe = self.counts.safe_profiles()
        if safe.size == 0:
            return rows
        if safe.size > DONOR_CANDIDATES:  # a weighted sample (Efraimidis-Spirakis keys)
            w = self.counts.weight[safe].astype(np.float64)
            keys = np.log(self.rng.uniform_open(safe.size)) / w
            safe = np.sort(safe[np.argsort(-keys, kind="stable")[:DONOR_CANDIDATES]])
        donors = self.counts.index.vectors[safe].astype(np.int64)
        weight = self.counts.weight[safe].astype(np.float64)
        rq = self.full[rows][:, self.qi].astype(np.int64)
        guard = np.stack([self._guarded(p, rq[:, p]) for p in range(self.q)], axis=1)
        donor_missing = donors == self.missing[None, :]
        row_missing = rq == self.missing[None, :]
        per = max(1, DONOR_PAIRS // max(donors.shape[0], 1))
        choice = np.full(rows.size, -1, dtype=np.int64)
        for start in range(0, rows.size, per):
            part = slice(start, start + per)
            diff = rq[part, None, :] != donors[None, :, :]
            dist = diff.sum(axis=2).astype(np.float64)
            # taking a blank where the record has a value is a suppression: avoid it
            blanks = (donor_missing[None, :, :] & ~row_missing[part, None, :]).sum(axis=2)
            dist += BLANK_COST * blanks
            dist[(diff & guard[part, None, :]).any(axis=2)] = np.inf
            # among the nearest, the most common profile; random among equals
            score = dist - 0.25 * weight[None, :] / (weight.max() + 1.0)
            score -= 0.25 * self.rng.uniform(score.size).reshape(score.shape) / (weight.max() + 1.0)
            best = np.argmin(score, axis=1)
            found = np.isfinite(dist[np.arange(best.size), best])
            choice[part] = np.where(found, best, -1)
        got = choice >= 0
        if got.any():
            new = self.full[rows[got]].copy()
            new[:, self.qi] = donors[choice[got]]
            possible = ~self._impossible(new)
            got[np.flatnonzero(got)[~possible]] = False
            new = new[possible]
        if got.any():
            self._replace(rows[got], new)
            self.copied[rows[got]] = True
        return rows[~got]

    # -- step 3: group protected categories' records -----------------------------------------
    def aggregate(self, rows: np.ndarray) -> np.ndarray:
        if rows.size < self.k or "aggregate" not in self.steps:
            return rows
        rq = self.full[rows][:, self.qi].astype(np.int64)
        guard = np.stack([self._guarded(p, rq[:, p]) for p in range(self.q)], axis=1)
        has = guard.any(axis=1)
        if not has.any():
            return rows
        # group by the rarest guarded value of each record
        rarity = np.full(guard.shape, np.inf)
        for p in range(self.q):
            now = self._one_way(p).astype(np.float64)
            rarity[:, p] = np.where(guard[:, p], now[np.where(guard[:, p], rq[:, p], 0)], np.inf)
        gcol = np.argmin(rarity, axis=1)
        gval = rq[np.arange(rows.size), gcol]
        gkey = np.where(has, gcol * (max(self.sizes) + 1) + gval, -1)
        order_cols = np.argsort(self.sizes, kind="stable")
        sort_keys = [rq[:, c] for c in order_cols[::-1]] + [gkey]
        order = np.lexsort(sort_keys)
        order = order[gkey[order] >= 0]
        g = gkey[order]
        starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
        sizes = np.diff(np.concatenate([starts, [g.size]]))
        big = sizes >= self.k
        if not big.any():
            return rows
        # blocks of k consecutive records per group; a remainder joins the group's last block
        members = np.flatnonzero(np.repeat(big, sizes))
        group_id = np.repeat(np.arange(sizes.size), sizes)[members]
        rank = members - starts[group_id]
        n_blocks = sizes // self.k
        first_block = np.concatenate([[0], np.cumsum(n_blocks)[:-1]])
        block = first_block[group_id] + np.minimum(rank // self.k, n_blocks[group_id] - 1)
        chosen = order[members]
        n_b = int(block.max()) + 1
        profile = np.zeros((n_b, self.q), dtype=np.int64)
        for p in range(self.q):
            tab = np.bincount(block * self.sizes[p] + rq[chosen, p],
                              minlength=n_b * self.sizes[p]).reshape(n_b, self.sizes[p])
            if self.missing[p] >= 0:  # the most common value; missing only if all miss
                has_value = tab.sum(axis=1) > tab[:, self.missing[p]]
                tab[has_value, self.missing[p]] = -1
            profile[:, p] = np.argmax(tab, axis=1)
        new = self.full[rows[chosen]].copy()
        new[:, self.qi] = profile[block]
        bad_block = np.zeros(n_b, dtype=bool)
        bad_block[block[self._impossible(new)]] = True
        fine = ~bad_block[block]
        chosen, block, new = chosen[fine], block[fine], new[fine]
        if chosen.size == 0:
            return rows
        self._replace(rows[chosen], new)
        self.counts.restore(profile[~bad_block])
        self.aggregated[rows[chosen]] = True
        left = np.ones(rows.size, dtype=bool)
        left[chosen] = False
        return rows[left]

    # -- step 4: redraw whole records from the model ------------------------------------------
    def redraw_rows(self, rows: np.ndarray) -> np.ndarray:
        if self.redraw is None or rows.size == 0 or "redraw" not in self.steps:
            return rows
        todo = rows
        for _ in range(REDRAW_ATTEMPTS):
            fresh = self.redraw(max(REDRAW_FACTOR * todo.size, 64))
            if [(d.name, d.size) for d in fresh.domains] != [
                    (d.name, d.size) for d in self.table.domains]:
                raise ValueError("redraw returned records over other columns or domains")
            cand = np.asarray(fresh.codes)
            cq = cand[:, self.qi].astype(np.int64)
            ok = ~self._impossible(cand)
            for s, cells in zip(self.counts.subsets, self.counts.cells, strict=True):
                keys, present = self.counts.keys(cq, s)
                ok &= ~present | (cells.allowed(keys) & (cells.count(keys) >= self.k))
            cand = cand[ok][: todo.size]
            if cand.shape[0]:
                self._replace(todo[: cand.shape[0]], cand.astype(self.full.dtype))
                self.redrawn[todo[: cand.shape[0]]] = True
                todo = todo[cand.shape[0]:]
            if todo.size == 0:
                break
        return todo

    # -- step 5: suppress one value, or drop ---------------------------------------------------
    def suppress_or_drop(self, rows: np.ndarray, degree: np.ndarray) -> None:
        rq = self.full[rows][:, self.qi].astype(np.int64)
        ok = (degree > 0) & (self.missing[None, :] >= 0) & (rq != self.missing[None, :])
        guard = np.stack([self._guarded(p, rq[:, p]) for p in range(self.q)], axis=1)
        score = degree.astype(np.float64) - 1000.0 * guard
        score += self.rng.uniform(score.size).reshape(score.shape) * 1e-3
        score = np.where(ok, score, -np.inf)
        can = ok.any(axis=1)
        if can.any():
            col = np.argmax(score[can], axis=1)
            new = self.full[rows[can]].copy()
            new[np.arange(col.size), self.qi[col]] = self.missing[col]
            self._replace(rows[can], new)
        if (~can).any():
            self._replace(rows[~can], None)

    # -- the schedule ---------------------------------------------------------------------------
    def run(self) -> None:
        for t in thresholds(self.k) if "recode" in self.steps else []:
            self.counts.eliminate_upto(t)
            for _ in range(MAX_ROUNDS_PER_THRESHOLD):
                rows, degree = self._violating()
                if rows.size == 0:
                    break
                self.rounds += 1
                left = self.recode(rows, degree)
                self.counts.eliminate_upto(t)
                if left.size == rows.size:
                    break
        final = self.k - 1
        for _ in range(MAX_FINAL_ROUNDS):
            self.counts.eliminate_upto(final)
            rows, degree = self._violating()
            if rows.size == 0:
                return
            self.rounds += 1
            left = self.recode(rows, degree)
            if left.size:
                self.counts.eliminate_upto(final)
                left = self.copy_nearest(left)
                left = self.aggregate(left)
                left = self.redraw_rows(left)
            if left.size == rows.size:  # nothing could move: the last resort for these
                self.suppress_or_drop(rows, degree)
        # Guaranteed end: suppression and dropping only (each round removes a present QI
        # value or a record from every offending record, so this loop terminates).
        while True:
            self.counts.eliminate_upto(final)
            rows, degree = self._violating()
            if rows.size == 0:
                return
            self.rounds += 1
            self.suppress_or_drop(rows, degree)

    # -- step 6: rebalance ---------------------------------------------------------------------
    def partner_tables(self) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """Tables (now, before enforcement) of each QI with the :data:`MAX_PARTNERS` other
        columns that depend on the QIs most (mutual information before enforcement), scaled
        to the kept record count (the pair tables count at most 1M records)."""
        qi = [int(j) for j in self.qi]
        others = [c for c in range(self.full.shape[1]) if c not in qi]
        info = {c: sum(_mutual_information(self._pair(self.pairs.before, j, c)) for j in qi)
                for c in others}
        chosen = sorted(sorted(others, key=lambda c: -info[c])[:MAX_PARTNERS])
        live = float(self.keep.sum())
        out = {}
        for j in qi:
            for c in chosen:
                now, before = self._pair(self.pairs.now, j, c), self._pair(self.pairs.before, j, c)
                out[(j, c)] = (now * (live / max(now.sum(), 1.0)),
                               before * (live / max(before.sum(), 1.0)))
        return out

    def _pair(self, tables: dict[tuple[int, int], np.ndarray], j: int, c: int) -> np.ndarray:
        return tables[(j, c)].reshape(self.pairs.sizes[j], self.pairs.sizes[c]).astype(np.float64)

    def rebalance(self, reporting_length: int) -> None:
        """The last step; skipped (and said in the report) should it raise: it only polishes a
        table that is k-anonymous already, so a defect in it must not fail the release."""
        live = np.flatnonzero(self.keep)
        try:
            rows, codes = self._rebalance(live, reporting_length)
        except Exception as exc:  # noqa: BLE001 - see the docstring; the type only, no value
            self.rebalance_note = f"skipped: internal error ({type(exc).__name__})"
            return
        same = (codes == self.full[rows]).all(axis=1)  # moved away and back: not a change
        rows, codes = rows[~same], codes[~same]
        self.undo_rebalance = (rows, self.full[rows].copy())
        self.full[rows] = codes
        self.rebalanced[rows] = True

    def _rebalance(self, live: np.ndarray,
                   reporting_length: int) -> tuple[np.ndarray, np.ndarray]:
        return rebalance(
            self.full, live, self.before_q, list(self.qi),
            [d.size for d in self.table.domains], list(self.missing),
            k=self.k, reporting_length=reporting_length, floors=self.floor,
            profiles=self.counts.index.vectors, weight_now=self.counts.weight,
            weight_before=self.weight_before, partners=self.partner_tables(),
            zero_values=self._zero_values if self.zeros else None,
            rng_uniform=self.rng.uniform,
            impossible=self._impossible if self.zeros else None,
            fresh=self.redrawn,
        )

    # -- the report ------------------------------------------------------------------------------
    def report(self, reporting_length: int) -> tuple[EncodedTable, dict[str, Any]]:
        table = self.table
        out = EncodedTable(self.full if self.keep.all() else self.full[self.keep], table.domains)
        final = check_k_anonymity(out, list(self.qi), k=self.k, reporting_length=reporting_length)
        if not final["ok"] and self.undo_rebalance is not None:  # a defect
            # in the last step must not fail a release whose table was k-anonymous before it
            rows, codes = self.undo_rebalance
            self.full[rows] = codes
            self.rebalanced[:] = False
            self.rebalance_note = "undone: the table after it failed the check"
            out = EncodedTable(self.full if self.keep.all() else self.full[self.keep],
                               table.domains)
            final = check_k_anonymity(out, list(self.qi), k=self.k,
                                      reporting_length=reporting_length)
        if not final["ok"]:  # pragma: no cover - guaranteed by construction
            raise RuntimeError("internal error: k-anonymity enforcement did not converge")
        n = table.n_records
        same_row = self.keep & ~self.redrawn
        names = [table.domains[j].name for j in self.qi]
        blank, lost, recoded, suppressed = {}, {}, {}, {}
        any_changed = self.redrawn | ~self.keep
        any_recoded = np.zeros(n, dtype=bool)
        any_suppressed = np.zeros(n, dtype=bool)
        present_before = 0
        for p, name in enumerate(names):  # one column at a time: memory O(n)
            j, mc = int(self.qi[p]), int(self.missing[p])
            before, after = self.before_q[:, p], self.full[:, j]
            changed = (before != after) & same_row
            now_missing = after == mc
            was_present = before != mc
            present_before += int(was_present.sum())
            supp = changed & now_missing & was_present
            rec = changed & ~now_missing
            recoded[name], suppressed[name] = int(rec.sum()), int(supp.sum())
            any_changed |= changed
            any_recoded |= rec
            any_suppressed |= supp
            blank[name] = {
                "before": float((before == mc).mean()) if n and mc >= 0 else 0.0,
                "after": float((out.codes[:, j] == mc).mean()) if out.n_records and mc >= 0
                else 0.0,
            }
            had = self.one_before[p] > 0
            has = np.bincount(out.codes[:, j].astype(np.int64),
                              minlength=self.sizes[p])[: self.sizes[p]] > 0
            gone = np.flatnonzero(had & ~has & (np.arange(self.sizes[p]) != mc))
            lost[name] = [table.domains[j].labels[v] for v in gone]
        records_changed = int(any_changed.sum())
        dropped = int((~self.keep).sum())
        n_supp = sum(suppressed.values())
        n_with_supp = int(any_suppressed.sum())
        return out, {
            "method": ", ".join([*(s for s in self.steps if s != "rebalance"), "suppress or drop",
                                 *(["rebalance"] if "rebalance" in self.steps else [])]),
            "k": self.k,
            "reporting_length": int(reporting_length),
            "columns": names,
            "n_records_in": n,
            "n_records_out": out.n_records,
            "violating_records_before": self.violating_before,
            "violating_share_before": self.violating_before / n if n else 0.0,
            "records_changed": records_changed,
            "records_changed_share": records_changed / n if n else 0.0,
            "recoded_cells": recoded,
            "recoded_cells_total": sum(recoded.values()),
            "records_recoded": int(any_recoded.sum()),
            "records_copied": int((self.copied & same_row).sum()),
            "records_aggregated": int((self.aggregated & same_row).sum()),
            "records_redrawn": int((self.redrawn & self.keep).sum()),
            "records_rebalanced": int((self.rebalanced & self.keep).sum()),
            "rebalance_note": self.rebalance_note,
            "suppressed_cells": n_supp,
            "suppressed_by_column": suppressed,
            "suppressed_cell_share": n_supp / present_before if present_before else 0.0,
            "records_with_suppression": n_with_supp,
            "record_suppression_share": n_with_supp / n if n else 0.0,
            "dropped_records": dropped,
            "dropped_share": dropped / n if n else 0.0,
            "blank_share": blank,
            "categories_lost": {nm: v for nm, v in lost.items() if v},
            "rounds": self.rounds,
            "check": final,
        }


def _mutual_information(table: np.ndarray) -> float:
    total = table.sum()
    if total <= 0:
        return 0.0
    p = table / total
    expected = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / expected[nz])).sum())


def enforce_k_anonymity(
    table: EncodedTable,
    columns: Sequence[str | int],
    *,
    k: int,
    reporting_length: int,
    rng: RandomSource,
    redraw: Redraw | None = None,
    steps: Sequence[str] = STEPS,
    in_place: bool = False,
    structural_zeros: Sequence[StructuralZero] = (),
) -> tuple[EncodedTable, dict[str, Any]]:
    """Change the QI values of as few records as possible, as plausibly as possible, until
    :func:`check_k_anonymity` passes (see the module docstring for the steps).

    ``redraw(m)``, when given, returns ``m`` fresh records from the fitted model (the
    synthesizer's ``sample``: post-processing); it is used only for records that no cheaper
    step could place. ``steps`` chooses which of :data:`STEPS` run before the last resort
    (``()``: suppression and dropping only, the earlier method; for comparisons).
    ``in_place`` changes ``table``'s own code array instead of a copy (saves one copy of the
    table; for a caller that discards the input, such as the release pipeline).
    ``structural_zeros`` (the schema's impossible combinations, over the table's column names):
    no record is moved into one (suppression cannot create one: missing is in no zero).
    Deterministic for a seeded ``rng`` (and a deterministic ``redraw``).

    Returns the protected table (records in their order, dropped ones removed) and the report
    of what changed (see the module docstring); ``report["check"]["ok"]`` is always true.
    """
    idx = _validate(table, columns, k, reporting_length)
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown enforcement steps {sorted(unknown)}; known: {list(STEPS)}")
    if not idx or table.n_records == 0:
        final = check_k_anonymity(table, idx, k=k, reporting_length=reporting_length)
        return table, _empty_report(table, idx, k, reporting_length, final)
    enforcer = _Enforcer(table, idx, k, reporting_length, rng, redraw, steps, in_place,
                         structural_zeros)
    bad = enforcer.counts.smallest_violations(k)
    enforcer.violating_before = int(enforcer.counts.weight[bad].sum())
    if enforcer.violating_before:
        enforcer.run()
        if "rebalance" in enforcer.steps:
            enforcer.rebalance(reporting_length)
    return enforcer.report(reporting_length)


def _empty_report(table: EncodedTable, idx: list[int], k: int, reporting_length: int,
                  final: dict[str, Any]) -> dict[str, Any]:
    n = table.n_records
    names = [table.domains[j].name for j in idx]
    return {
        "method": "nothing to enforce", "k": int(k), "reporting_length": int(reporting_length),
        "columns": names, "n_records_in": n, "n_records_out": n,
        "violating_records_before": 0, "violating_share_before": 0.0,
        "records_changed": 0, "records_changed_share": 0.0,
        "recoded_cells": {nm: 0 for nm in names}, "recoded_cells_total": 0,
        "records_recoded": 0, "records_copied": 0, "records_aggregated": 0,
        "records_redrawn": 0, "records_rebalanced": 0, "rebalance_note": "",
        "suppressed_cells": 0,
        "suppressed_by_column": {nm: 0 for nm in names}, "suppressed_cell_share": 0.0,
        "records_with_suppression": 0, "record_suppression_share": 0.0,
        "dropped_records": 0, "dropped_share": 0.0, "blank_share": {},
        "categories_lost": {}, "rounds": 0, "check": final,
    }
