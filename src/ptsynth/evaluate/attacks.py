"""Privacy attacks on the synthetic data, after Anonymeter (Giomi et al., PoPETs 2023).

Why attacks as well as k/l/t and DCR: they answer the question a data-protection officer asks
("could someone single out, link, or infer a secret about a person?") with a success rate, a
Wilson confidence interval, a *baseline* of random guesses that a meaningful attack must beat,
and a *control* set of real records not used for training. risk = (attack − control)/(1 − control).

Implemented on integer codes, vectorised, seeded (a numpy Generator: this is evaluation
sampling, not a privacy mechanism, so it does not go through :mod:`ptsynth.privacy`).

* Singling out (multivariate): predicates built from random synthetic records on ``n_cols``
  random columns (equality for unordered columns; ``>=`` / ``<=`` towards the extreme for
  ordered ones, as Anonymeter does with the median); kept when they single out one distinct
  synthetic record; success = the predicate matches exactly one distinct real record. Baseline:
  random predicates (random columns, values present in the synthetic data, random operators).
  Control success is corrected for a control set smaller than the real set (expected singling
  out of the kept predicates on a real subsample of the control's size, hypergeometric).
* Linkability: the auxiliary columns are split into two groups; a target is linked when its
  nearest synthetic record on each group is the same record. Baseline: two random records.
* Inference: guess a secret column as the value of the nearest synthetic record on the
  auxiliary columns; success = exact code match (missing = missing counts). Baseline: the secret
  of a random synthetic record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ptsynth.evaluate.distance import CodeNeighbours
from ptsynth.evaluate.stats import (
    ORDERED_KINDS,
    compact_codes,
    figure,
    residual_risk,
    row_ids,
    wilson,
)
from ptsynth.table import EncodedTable

N_ATTACKS = 500


def _distinct(codes: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    (ids,) = row_ids(compact_codes(codes, sizes))
    _, first = np.unique(ids, return_index=True)
    return codes[np.sort(first)]


def _summarise(name: str, n_attacks: int | tuple[int, int, int], n_success: float,
               n_baseline: float, n_control: float | None, **extra: object) -> dict:
    na, nb, nc = n_attacks if isinstance(n_attacks, tuple) else (n_attacks,) * 3
    attack = wilson(n_success, na)
    baseline = wilson(n_baseline, nb)
    control = None if n_control is None else wilson(n_control, nc)
    risk = residual_risk(attack, control)
    beats = attack["value"] is not None and baseline["value"] is not None \
        and attack["value"] > baseline["value"]
    significant = beats and attack["ci"][0] > baseline["ci"][1]
    return {
        "attack": name,
        "risk": figure(risk["value"], f"{name}_risk", ci=risk["ci"]),
        "attack_rate": figure(attack["value"], "attack_success_rate", ci=attack["ci"],
                              n=attack["n"], n_success=attack["n_success"]),
        "baseline_rate": figure(baseline["value"], "baseline_success_rate", ci=baseline["ci"],
                                n=baseline["n"], n_success=baseline["n_success"]),
        "control_rate": None if control is None else figure(
            control["value"], "control_success_rate", ci=control["ci"], n=control["n"],
            n_success=control["n_success"]),
        "beats_baseline": bool(beats),
        "beats_baseline_significantly": bool(significant),
        "meaningful": bool(beats),
        **extra,
    }


# -- singling out --------------------------------------------------------------------------
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a uint64 matrix (``np.bitwise_count`` on numpy ≥ 2, else a table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    return _POPCOUNT[words.view(np.uint8)].sum(axis=1)


class _PredicateCounter:
    """Counts records matching conjunctions of per-column range predicates, with bitsets.

    For every column ``j`` and present code ``v`` it keeps the packed bitset of records with
    ``code <= v`` (present only), plus the bitset of missing records. An axis predicate
    ``lo <= x <= hi`` is then ``le[hi] ^ le[lo − 1]``, "missing" is the missing bitset, and a
    negated predicate is ``present ^ range``; a query ANDs its axes and pops the count. Memory:
    Σ(domain sizes) × n/8 bytes; no per-row Python loop.
    """

    def __init__(self, codes: np.ndarray, domains: Sequence) -> None:
        n = codes.shape[0]
        self.nbytes = (n + 7) // 8
        blocks, offsets, off = [], [], 0
        self.missing = np.array([d.missing_code if d.missing_code is not None else -1
                                 for d in domains])
        self.top = np.array([len(d.labels) - 1 if d.allows_missing else d.size - 1
                             for d in domains])
        for j, _d in enumerate(domains):
            col = codes[:, j]
            top = int(self.top[j])
            present = col <= top
            # rows: le[-1] (empty), le[0..top], missing
            onehot_cum = [np.zeros(n, dtype=bool)]
            for v in range(top + 1):  # one vectorised pass per domain value, not per row
                onehot_cum.append(present & (col <= v))
            onehot_cum.append(~present)
            packed = np.packbits(np.stack(onehot_cum), axis=1)
            pad = (-packed.shape[1]) % 8  # whole 64-bit words: AND/XOR/popcount per word
            blocks.append(np.pad(packed, ((0, 0), (0, pad))))
            offsets.append(off)
            off += top + 3
        self.bits = np.ascontiguousarray(np.concatenate(blocks, axis=0)).view(np.uint64)
        self.offsets = np.array(offsets, dtype=np.int64)

    def count(self, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray, neg: np.ndarray,
              chunk: int = 512) -> np.ndarray:
        out = np.empty(cols.shape[0], dtype=np.int64)
        for s in range(0, cols.shape[0], chunk):
            c, l_, h, g = cols[s:s + chunk], lo[s:s + chunk], hi[s:s + chunk], neg[s:s + chunk]
            base = self.offsets[c]
            top = self.top[c]
            is_missing = (l_ == self.missing[c]) & (self.missing[c] >= 0)
            hh = np.clip(np.maximum(h, l_ - 1), -1, top)
            ll = np.clip(l_ - 1, -1, top)
            i_hi = np.where(is_missing, base + top + 2, base + hh + 1)
            i_lo = np.where(is_missing, base, base + ll + 1)
            acc = None
            for t in range(c.shape[1]):
                axis = self.bits[i_hi[:, t]] ^ self.bits[i_lo[:, t]]
                negate = g[:, t] & ~is_missing[:, t]
                if negate.any():
                    present = self.bits[base[:, t] + top[:, t] + 1]
                    axis = np.where(negate[:, None], present ^ axis, axis)
                acc = axis if acc is None else acc & axis
            out[s:s + chunk] = _popcount_rows(acc)
        return out


def singling_out(real: EncodedTable, synth: EncodedTable, control: EncodedTable | None, *,
                 n_attacks: int = N_ATTACKS, n_cols: int = 3, seed: int = 0,
                 max_batches: int = 20, batch: int = 1000) -> dict:
    """Multivariate singling-out risk (see the module docstring)."""
    rng = np.random.default_rng([seed, 21])
    sizes = real.sizes
    d = real.n_columns
    n_cols = min(n_cols, d)
    missing = np.array([s.missing_code if s.missing_code is not None else -1
                        for s in real.domains])
    top_all = np.array([len(s.labels) - 1 if s.allows_missing else s.size - 1
                        for s in real.domains])
    ordered = np.array([s.kind in ORDERED_KINDS for s in real.domains])
    syn = _distinct(synth.codes, sizes).astype(np.int64)
    ori = _distinct(real.codes, sizes).astype(np.int64)
    ctl = None if control is None else _distinct(control.codes, sizes).astype(np.int64)
    if syn.shape[0] == 0 or ori.shape[0] == 0 or d == 0:
        return {"attack": "singling_out", "computed": False, "reason": "empty table"}
    syn_count = _PredicateCounter(syn, real.domains)
    # medians of present codes in the synthetic data (public: synthetic only)
    med = np.array([np.median(c[c != m]) if np.any(c != m) else 0
                    for c, m in zip(syn.T, missing, strict=False)])
    kept: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for _ in range(max_batches):
        rows = syn[rng.integers(0, syn.shape[0], size=batch)]
        cols = np.sort(np.argsort(rng.random((batch, d)), axis=1)[:, :n_cols], axis=1)
        val = np.take_along_axis(rows, cols, axis=1)
        lo, hi = val.copy(), val.copy()
        is_ord = ordered[cols] & (val != missing[cols])
        up = is_ord & (val > med[cols])
        down = is_ord & ~up
        hi[up] = top_all[cols][up]
        lo[down] = 0
        neg = np.zeros_like(cols, dtype=bool)
        good = np.flatnonzero(syn_count.count(cols, lo, hi, neg) == 1)
        for g in good:
            kept.setdefault(np.concatenate([cols[g], lo[g], hi[g]]).tobytes(),
                            (cols[g], lo[g], hi[g]))
            if len(kept) >= n_attacks:
                break
        if len(kept) >= n_attacks:
            break
    if not kept:
        return _summarise("singling_out", n_attacks, 0, 0, None if ctl is None else 0,
                          queries_generated=0, n_cols=n_cols)
    qc = np.stack([k[0] for k in kept.values()])
    qlo = np.stack([k[1] for k in kept.values()])
    qhi = np.stack([k[2] for k in kept.values()])
    qneg = np.zeros_like(qc, dtype=bool)
    ori_count = _PredicateCounter(ori, real.domains)
    c_real = ori_count.count(qc, qlo, qhi, qneg)
    n_success = int((c_real == 1).sum())
    # baseline: random predicates on values present in the synthetic data
    bcols = np.sort(np.argsort(rng.random((n_attacks, d)), axis=1)[:, :n_cols], axis=1)
    bval = syn[rng.integers(0, syn.shape[0], size=(n_attacks, n_cols)), bcols]
    op = rng.integers(0, 6, size=bval.shape)  # 0 ==, 1 !=, 2 >, 3 <, 4 >=, 5 <=
    op = np.where(ordered[bcols] & (bval != missing[bcols]), op, op % 2)
    top = top_all[bcols]
    blo = np.select([op <= 1, op == 2, op == 3, op == 4], [bval, bval + 1, 0, bval], 0)
    bhi = np.select([op <= 1, op == 2, op == 3, op == 4], [bval, top, bval - 1, top], bval)
    n_baseline = int((ori_count.count(bcols, blo, bhi, op == 1) == 1).sum())
    n_control = None
    correction = None
    if ctl is not None:
        c_ctl = _PredicateCounter(ctl, real.domains).count(qc, qlo, qhi, qneg)
        n_control = float((c_ctl == 1).sum())
        m, n_total = ctl.shape[0], ori.shape[0]
        if m < n_total:
            expected = float(_hypergeom_pmf_one(n_total, c_real, m).sum())
            correction = (n_success / expected) if expected > 0 else 1.0
            n_control *= correction
    return _summarise("singling_out", n_attacks, n_success, n_baseline, n_control,
                      queries_generated=len(kept), n_cols=n_cols,
                      control_size_correction=correction)


# -- nearest-neighbour attacks -------------------------------------------------------------
class SynthIndex:
    """Nearest synthetic record on a column subset, built once per subset and reused.

    Why: every inference attack on the quasi-identifiers searches the same synthetic records on
    the same columns; the distinct-row reduction and the candidate encoding are shared, and all
    targets of all attacks on one subset go through one :meth:`CodeNeighbours.nearest` call.
    """

    def __init__(self, synth: EncodedTable) -> None:
        self.synth = synth
        self._cache: dict[tuple[int, ...], tuple[np.ndarray, CodeNeighbours]] = {}

    def _get(self, cols: Sequence[int]) -> tuple[np.ndarray, CodeNeighbours]:
        key = tuple(int(c) for c in cols)
        if key not in self._cache:
            sub = self.synth.codes[:, list(key)]
            sizes = [self.synth.domains[j].size for j in key]
            (ids,) = row_ids(compact_codes(sub, sizes))
            _, first = np.unique(ids, return_index=True)
            first = np.sort(first)  # distinct rows, each at its lowest index (ties → lowest)
            self._cache[key] = (first, CodeNeighbours(sub[first],
                                                      [self.synth.domains[j] for j in key]))
        return self._cache[key]

    def nearest(self, cols: Sequence[int], queries: np.ndarray) -> np.ndarray:
        """Index (into the synthetic table) of each query's nearest record on ``cols``."""
        first, nn = self._get(cols)
        _, arg = nn.nearest(np.asarray(queries)[:, list(cols)])
        return first[arg]


def _nearest_in_synth(synth: EncodedTable, cols: Sequence[int], queries: np.ndarray
                      ) -> np.ndarray:
    """Index (into ``synth``) of each query's nearest synthetic record on ``cols``."""
    return SynthIndex(synth).nearest(cols, queries)


def _targets(table: EncodedTable, n: int, rng: np.random.Generator) -> np.ndarray:
    n = min(n, table.n_records)
    return table.codes[np.sort(rng.choice(table.n_records, n, replace=False))]


def linkability(real: EncodedTable, synth: EncodedTable, control: EncodedTable | None,
                aux_cols: tuple[Sequence[str], Sequence[str]], *, n_attacks: int = N_ATTACKS,
                seed: int = 0, index: SynthIndex | None = None) -> dict:
    """Linkability risk with ``n_neighbors = 1`` (see the module docstring)."""
    rng = np.random.default_rng([seed, 31])
    a0, a1 = (list(real.indices(a)) for a in aux_cols)
    if not a0 or not a1 or synth.n_records == 0:
        return {"attack": "linkability", "computed": False, "reason": "empty auxiliary group"}
    index = index or SynthIndex(synth)
    # draw in the order of the definition: attack targets, baseline pairs, control targets
    t_real = _targets(real, n_attacks, rng)
    na = t_real.shape[0]
    r0 = rng.integers(0, synth.n_records, size=na)
    r1 = rng.integers(0, synth.n_records, size=na)
    n_baseline = int((r0 == r1).sum())
    t_ctl = None if control is None else _targets(control, n_attacks, rng)
    queries = t_real if t_ctl is None else np.concatenate([t_real, t_ctl])
    linked = index.nearest(a0, queries) == index.nearest(a1, queries)
    n_success = int(linked[:na].sum())
    n_control, nc = (None, na) if t_ctl is None else (int(linked[na:].sum()), t_ctl.shape[0])
    return _summarise("linkability", (na, na, nc), n_success, n_baseline, n_control,
                      aux_columns=[list(aux_cols[0]), list(aux_cols[1])])


def inference(real: EncodedTable, synth: EncodedTable, control: EncodedTable | None,
              secret: str, aux: Sequence[str], *, n_attacks: int = N_ATTACKS,
              seed: int = 0, index: SynthIndex | None = None) -> dict:
    """Attribute-inference risk for one secret column (see the module docstring)."""
    return inference_many(real, synth, control, [(secret, aux)], n_attacks=n_attacks,
                          seed=seed, index=index)[0]


def inference_many(real: EncodedTable, synth: EncodedTable, control: EncodedTable | None,
                   attacks: Sequence[tuple[str, Sequence[str]]], *,
                   n_attacks: int = N_ATTACKS, seed: int = 0,
                   index: SynthIndex | None = None) -> list[dict]:
    """Several attribute-inference attacks ``(secret, auxiliary columns)`` in one pass.

    Each attack draws its targets from its own seeded stream (exactly as if run alone), so
    results do not depend on which other attacks are batched with it; the nearest-neighbour
    searches of all attacks sharing the same auxiliary columns are one search.
    """
    index = index or SynthIndex(synth)
    plans: list[dict] = []
    for secret, aux in attacks:
        rng = np.random.default_rng([seed, 41, real.index_of(secret)])
        js = real.index_of(secret)
        cols = [c for c in real.indices(aux) if c != js]
        if not cols or synth.n_records == 0:
            plans.append({"secret": secret, "skip": True})
            continue
        t_real = _targets(real, n_attacks, rng)
        nb = min(synth.n_records, t_real.shape[0])
        tb = _targets(real, nb, rng)
        guesses = synth.codes[rng.choice(synth.n_records, nb, replace=False), js]
        t_ctl = None if control is None else _targets(control, n_attacks, rng)
        plans.append({"secret": secret, "skip": False, "js": js, "cols": tuple(cols),
                      "t_real": t_real, "t_ctl": t_ctl,
                      "n_baseline": int((guesses == tb[:, js]).sum()), "nb": nb})
    # one nearest-neighbour search per distinct auxiliary column set
    by_cols: dict[tuple[int, ...], list[dict]] = {}
    for p in plans:
        if not p["skip"]:
            by_cols.setdefault(p["cols"], []).append(p)
    for cols, group in by_cols.items():
        blocks = [b for p in group for b in (p["t_real"], p["t_ctl"]) if b is not None]
        nearest = index.nearest(cols, np.concatenate(blocks))
        start = 0
        for p in group:
            for name in ("t_real", "t_ctl"):
                if p[name] is None:
                    continue
                m = p[name].shape[0]
                guess = synth.codes[nearest[start:start + m], p["js"]]
                p["ok_" + name] = int((guess == p[name][:, p["js"]]).sum())
                start += m
    out = []
    for p in plans:
        if p["skip"]:
            out.append({"attack": "inference", "secret": p["secret"], "computed": False,
                        "reason": "no auxiliary columns"})
            continue
        na = p["t_real"].shape[0]
        n_control, nc = (None, na) if p["t_ctl"] is None else (p["ok_t_ctl"],
                                                               p["t_ctl"].shape[0])
        out.append(_summarise("inference", (na, p["nb"], nc), p["ok_t_real"], p["n_baseline"],
                              n_control, secret=p["secret"],
                              aux_columns=[real.domains[c].name for c in p["cols"]]))
    return out


_LGAMMA = np.vectorize(math.lgamma, otypes=[np.float64])


def _log_binom(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _LGAMMA(a + 1.0) - _LGAMMA(b + 1.0) - _LGAMMA(a - b + 1.0)


def _hypergeom_pmf_one(n_total: int, successes: np.ndarray, draws: int) -> np.ndarray:
    """P(X = 1) for X ~ Hypergeometric(population ``n_total``, ``successes``, ``draws``):
    K·C(N−K, n−1) / C(N, n), as ``scipy.stats.hypergeom.pmf(1, N, K, n)`` (without importing
    scipy.stats, which takes longer than a small release's whole evaluation)."""
    k = np.asarray(successes, dtype=np.float64)
    out = np.zeros(k.shape)
    ok = (k >= 1) & (k <= n_total) & (n_total - k >= draws - 1) & (draws >= 1)
    kk = k[ok]
    out[ok] = np.exp(np.log(kk) + _log_binom(n_total - kk, np.full_like(kk, draws - 1.0))
                     - _log_binom(np.full_like(kk, float(n_total)), np.full_like(kk, float(draws))))
    return out
