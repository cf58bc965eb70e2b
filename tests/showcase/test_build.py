"""The showcase page is built from the bundle's public files only, self-contained, and laid out
from the ``[showcase]`` section or from what the columns say."""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundles import COLUMNS, release, small_config, small_frame
from ptsynth.cli import app
from ptsynth.config import ReleaseConfig
from ptsynth.demo import demo_config_path
from ptsynth.errors import ConfigError
from ptsynth.release.bundle import Bundle
from ptsynth.showcase import layout
from ptsynth.showcase.build import render

runner = CliRunner()
RECORD_SECRET = "PLANTED-RECORD-SECRET-4471"
REPORT_SECRET = "PLANTED-REPORT-SECRET-9053"


def decode(html: str) -> dict:
    """The page's embedded data header (the arrays are numbers only)."""
    data = re.search(r'<script id="ptsynth-data"[^>]*>([^<]*)</script>', html).group(1)
    raw = gzip.decompress(base64.b64decode(data))
    head_len, version = struct.unpack("<II", raw[:8])
    assert version == 1
    return json.loads(raw[8:8 + head_len])


@pytest.fixture(scope="module", params=["pgm", "aggregate"])
def planted(request, tmp_path_factory) -> Path:
    """A release whose records hold a value in an ignored column, and whose private report
    holds another: neither may reach the page."""
    frame = small_frame().assign(caseNotes=RECORD_SECRET)
    out = release(tmp_path_factory.mktemp("planted") / "bundle", frame,
                  synthesizer=request.param, epsilon=2.0)
    report = json.loads((out / "report.json").read_text())
    report["planted"] = REPORT_SECRET
    (out / "report.json").write_text(json.dumps(report))
    return out


def test_no_private_value_reaches_the_page(planted: Path, tmp_path: Path) -> None:
    page = tmp_path / "showcase.html"
    res = runner.invoke(app, ["showcase", str(planted), "-o", str(page)])
    assert res.exit_code == 0, res.output
    for html in (page.read_text(), (planted / "showcase.html").read_text()):
        header = json.dumps(decode(html))
        for secret in (RECORD_SECRET, REPORT_SECRET):
            assert secret not in html and secret not in header


def _strings(node, out: list[str]) -> list[str]:
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            _strings(v, out)
    elif isinstance(node, list):
        for v in node:
            _strings(v, out)
    return out


def test_every_string_in_the_page_data_comes_from_a_public_file(planted: Path) -> None:
    header = decode((planted / "showcase.html").read_text())
    public = "\n".join((planted / name).read_text(errors="replace")
                       for name in ("manifest.json", "budget.json", "model.json", "synthetic.csv",
                                    "aggregates.csv"))
    private = (planted / "report.json").read_text()
    del header["geo"]  # package data (map geometry), the same for every release
    allowed = {"categorical", "ordinal", "set", "uint8", "uint16", "uint32", "int32", "float64",
               "dp_aggregate", "model", "synthetic", "time", "geography", "demographics",
               "exploitation", "iso3166_alpha3", "discrete_gaussian", "exponential", "pgm",
               "aggregate", "small-test", "hand-made test records", ";", ""}
    for s in _strings(header, []):
        if s in allowed or s in public:
            continue
        # the ledger summary shortens query texts: every word must be public
        assert all(w in public for w in re.split(r"[\s—]+", s) if w), s
        assert s not in private or s in public


def test_the_page_is_self_contained(planted: Path) -> None:
    html = (planted / "showcase.html").read_text()
    assert "Content-Security-Policy" in html and "connect-src 'none'" in html
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<link" not in html and "<iframe" not in html and "@import" not in html
    manifest = json.loads((planted / "manifest.json").read_text())
    assert "showcase.html" in manifest["outputs"] and "showcase.html" in manifest["files"]["public"]
    assert Bundle.load(planted)  # hashes verify with the page in place


def test_a_seeded_bundle_says_so_loudly(planted: Path) -> None:
    html = (planted / "showcase.html").read_text()
    assert 'data-test-bundle="1"' in html and "NOT FOR RELEASE" in html


def test_render_is_deterministic_for_a_bundle(planted: Path) -> None:
    bundle = Bundle.load(planted)
    assert render(bundle) == render(bundle)


# ---------------------------------------------------------------------------------------------
# layout: configured or detected
# ---------------------------------------------------------------------------------------------
def test_detected_layout_of_the_demo_config() -> None:
    cfg = ReleaseConfig.load(demo_config_path())
    lay = layout(cfg.schema, cfg.showcase, cfg.dataset.name)
    assert lay.time == "yearOfRegistration"
    assert [(g.column, g.codes) for g in lay.geography] == [
        ("CountryOfExploitation", "iso3166_alpha3"), ("citizenship", "iso3166_alpha3")]
    assert (lay.age, lay.sex) == ("ageBroad", "gender")
    assert lay.exploitation == ("isForcedLabour", "isSexualExploit", "isOtherExploit")


def test_configured_layout_wins_and_names_pages() -> None:
    cfg = small_config(showcase={
        "title": "Hotline cases", "time": "year", "geography": ["country"],
        "geography_codes": "iso3166_alpha3", "demographics": ["year", "gender"],
        "exploitation": ["isForcedLabour"],
        "pages": [{"title": "Control", "columns": ["means", "gender"]}]})
    lay = layout(cfg.schema, cfg.showcase, cfg.dataset.name)
    assert lay.title == "Hotline cases" and lay.sex == "gender" and lay.age == "year"
    assert lay.pages == (("Control", ("means", "gender")),)
    assert lay.detected == ()
    # the section survives the manifest round trip
    assert ReleaseConfig.from_dict(cfg.to_dict()).showcase == cfg.showcase


@pytest.mark.parametrize(("section", "message"), [
    ({"time": "when"}, "'when' is not a released column"),
    ({"geography_codes": "fips"}, "geography_codes must be one of"),
    ({"pages": [{"title": "x"}]}, "columns must be a non-empty list"),
    ({"colour": "red"}, "unknown key"),
])
def test_bad_showcase_sections_are_config_errors(section, message) -> None:
    with pytest.raises(ConfigError, match=message):
        small_config(showcase=section)


def test_alpha2_and_us_state_codes_are_detected() -> None:
    cols = [dict(c) for c in COLUMNS]
    cols[1] = {"name": "country", "kind": "categorical", "values": ["US", "MX", "GB", "DE"]}
    cols.append({"name": "state", "kind": "categorical", "values": ["CA", "TX", "NY", "WA"]})
    data = small_config().to_dict()
    data["columns"] = cols
    cfg = ReleaseConfig.from_dict(data)
    lay = layout(cfg.schema, cfg.showcase, "x")
    assert {(g.column, g.codes) for g in lay.geography} == {
        ("country", "iso3166_alpha2"), ("state", "us_state")}
