"""JSON and HTML reports: schema, round trip, escaping, self-containment, no record values."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from ptsynth.evaluate import evaluate
from ptsynth.report import read_json_report, render_html, write_html_report, write_json_report
from ptsynth.table import ColumnDomain, EncodedTable

SECRET_LABEL = "Zz-secret-label-91"


@pytest.fixture(scope="module")
def report() -> dict:
    rng = np.random.default_rng(2)
    doms = (
        ColumnDomain("<script>alert(1)</script>", ("a", SECRET_LABEL), quasi_identifier=True),
        ColumnDomain("age", tuple(str(i) for i in range(6)), kind="ordinal",
                     quasi_identifier=True),
        ColumnDomain("means=debt", ("1",), source="means", kind="set_member", sensitive=True),
        ColumnDomain("sex", ("f", "m"), sensitive=True),
    )
    n = 400
    codes = np.stack([rng.integers(0, d.size, n) for d in doms], 1)
    real = EncodedTable(codes, doms)
    syn = real.with_codes(np.stack([rng.integers(0, d.size, n) for d in doms], 1))
    hold = real.with_codes(np.stack([rng.integers(0, d.size, 100) for d in doms], 1))
    ledger = {"total": {"epsilon": 1.0, "delta": 1e-9, "rho": 0.0152},
              "entries": [{"query": "record count", "mechanism": "laplace", "rho": 0.0002,
                           "epsilon": 0.02},
                          {"query": "1-way <age> & <sex>", "mechanism": "gaussian",
                           "rho": 0.015, "epsilon": 0.98}]}
    return evaluate(real, syn, holdout=hold, target="sex", ledger=ledger, seed=0,
                    n_attacks=100, dcr_sample=100, k=5)


def _figures(obj, path=""):
    if isinstance(obj, dict):
        if "value" in obj and "definition" in obj:
            yield path, obj
        for k, v in obj.items():
            if k != "definitions":
                yield from _figures(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _figures(v, f"{path}/{i}")


def test_json_round_trip_and_every_figure_named(report: dict, tmp_path) -> None:
    p = write_json_report(report, tmp_path / "r.json")
    text = p.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    data = read_json_report(p)
    assert data["schema_version"] == 1
    figs = list(_figures(data))
    assert len(figs) > 40
    for path, f in figs:
        assert f["definition"] in data["definitions"], path
    assert data["utility"]["visibility"] == "private" and data["budget"]["visibility"] == "public"
    assert data["budget"]["spent_rho"]["value"] == pytest.approx(0.0152)


def test_json_rejects_unknown_schema(tmp_path) -> None:
    with pytest.raises(ValueError, match="schema_version"):
        write_json_report({"schema_version": 99}, tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(ValueError):
        read_json_report(tmp_path / "y.json")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_self_contained_escaped_and_marked(report: dict, tmp_path) -> None:
    path = write_html_report(report, tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html      # column name escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert SECRET_LABEL not in html                     # no record-level value anywhere
    assert not re.search(r'(src|href)\s*=\s*"https?:', html)
    assert "@import" not in html and "url(" not in html
    assert "NOT FOR PUBLICATION" in html
    parser = _Collect()
    parser.feed(html)
    charts = [a for t, a in parser.tags if t == "svg" and "data-chart" in a]
    names = {a["data-chart"] for a in charts}
    assert {"marginal-error", "preservation-by-length", "worst-column-sets", "attack-risks",
            "budget", "dcr"} <= names
    marks = [a for t, a in parser.tags if t in ("rect", "path") and "mark" in a.get("class", "")]
    assert marks and all("data-value" in a for a in marks)
    sections = {a["id"]: a.get("data-visibility") for t, a in parser.tags if t == "section"
                and "data-visibility" in a}
    assert sections["utility"] == "private" and sections["risk"] == "private"
    assert sections["budget"] == "public"


def test_html_without_optional_sections() -> None:
    minimal = {"schema_version": 1, "summary": {"verdicts": []}, "utility": None, "risk": None}
    html = render_html(minimal)
    assert html.startswith("<!DOCTYPE html>") and "Synthetic data evaluation" in html


def _release_section() -> dict:
    """A release section shaped like the one ``ptsynth.pipeline.release`` merges in."""
    return {
        "sizes": {"real_records": 400, "holdout_records": 100, "synthetic_records": 380,
                  "columns": 4, "aggregate_combinations": {1: 8, 2: 21, 3: 17}},
        "protection": {"k": 5, "reporting_length": 3, "columns": ["age"],
                       "n_records_in": 400, "n_records_out": 380, "suppressed_cells": 12,
                       "suppressed_cell_share": 0.03, "records_with_suppression": 12,
                       "record_suppression_share": 0.03, "dropped_records": 20,
                       "dropped_share": 0.05, "rounds": 1,
                       "method": "recode, copy, aggregate, redraw, suppress or drop",
                       "violating_records_before": 60, "violating_share_before": 0.15,
                       "records_changed": 57, "records_changed_share": 0.1425,
                       "recoded_cells": {"age": 25}, "records_recoded": 25,
                       "records_copied": 3, "records_aggregated": 0, "records_redrawn": 0,
                       "suppressed_by_column": {"age": 12},
                       "blank_share": {"age": {"before": 0.1, "after": 0.13}},
                       "categories_lost": {"age": ["<90+>"]},
                       "check": {"ok": True, "k": 5, "reporting_length": 3, "columns": ["age"],
                                 "smallest_count": 6},
                       "final_check": {"ok": True, "k": 5, "reporting_length": 3,
                                       "columns": ["age"], "smallest_count": 6,
                                       "violations": {1: 0, 2: 0, 3: 0}}},
        "warnings": ["domains were proposed from the data <b>unconfirmed</b>",
                     "noise drawn from a seeded generator (seed 3): reproducible, "
                     "NOT FOR RELEASE"],
    }


def test_release_section_json_valid_and_tagged(report: dict, tmp_path) -> None:
    merged = {**report, "release_id": "20250101T000000Z-abcd1234", "release": _release_section()}
    data = read_json_report(write_json_report(merged, tmp_path / "r.json"))
    rel = data["release"]
    assert data["schema_version"] == 1 and data["release_id"] == "20250101T000000Z-abcd1234"
    assert rel["visibility"] == "private" and rel["protection"]["visibility"] == "public"
    assert rel["not_for_release"] is True
    assert rel["sizes"]["aggregate_combinations"] == {"1": 8, "2": 21, "3": 17}
    assert rel["protection"]["final_check"]["violations"] == {"1": 0, "2": 0, "3": 0}
    assert "visibility" not in merged["release"]          # the caller's dict is not modified
    clean = {**merged, "release": {**_release_section(), "warnings": []}}
    assert read_json_report(write_json_report(clean, tmp_path / "c.json"))["release"][
        "not_for_release"] is False


@pytest.mark.parametrize("bad", [
    {"warnings": "NOT FOR RELEASE"},            # a string, not a list
    {"warnings": [3]},
    {"sizes": [1, 2]},
    {"protection": "k=5"},
])
def test_release_section_malformed_is_rejected(report: dict, tmp_path, bad: dict) -> None:
    with pytest.raises(ValueError, match="release"):
        write_json_report({**report, "release": bad}, tmp_path / "x.json")
    with pytest.raises(ValueError, match="release"):
        render_html({**report, "release": bad})
    with pytest.raises(ValueError, match="release_id"):
        write_json_report({**report, "release_id": 7}, tmp_path / "y.json")


def test_html_release_section_rendered_with_warnings_first(report: dict) -> None:
    html = render_html({**report, "release_id": "rel-<1>", "release": _release_section()})
    alert = html.index('data-release-alert="not-for-release"')
    assert alert < html.index('id="summary"') < html.index('id="release"')
    assert "<title>NOT FOR RELEASE" in html
    assert "&lt;b&gt;unconfirmed&lt;/b&gt;" in html and "<b>unconfirmed" not in html
    assert "rel-&lt;1&gt;" in html
    parser = _Collect()
    parser.feed(html)
    sections = {a["id"]: a.get("data-visibility") for t, a in parser.tags if t == "section"
                and "data-visibility" in a}
    assert sections["release"] == "private"
    warnings = [a for t, a in parser.tags if t == "li" and "data-release-warning" in a]
    assert len(warnings) == 2
    assert '<p class="check ok" data-final-check="ok">' in html
    assert "5.00%" in html and "3.00%" in html           # dropped and suppressed shares
    assert "DP aggregate combinations released, length 3" in html
    marks = re.findall(r'data-chart="protection-suppression".*?</svg>', html)
    assert marks and marks[0].count('class="mark"') == 4
    # what the k-anonymity step changed, per column, in plain words
    assert "Per quasi-identifier" in html and "14.25%" in html
    assert "10.00% → 13.00%" in html and "&lt;90+&gt;" in html and "<90+>" not in html
    # no release section, no warning box; no protection enforced is said plainly
    plain = render_html(report)
    assert "data-release-alert" not in plain and 'id="release"' not in plain
    no_qi = render_html({**report, "release": {"protection": {"quasi_identifiers": [], "k": 5},
                                               "warnings": []}})
    assert "k-anonymity was not enforced (no quasi-identifiers declared)" in no_qi
    assert "data-release-alert" not in no_qi and "data-release-warning" not in no_qi
