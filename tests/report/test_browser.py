"""The HTML report renders in a real browser: headless Chromium, file://, no network.

Checks the DOM after the page's inline script ran (each chart has marks with a non-zero
rendered box) and that the screenshot is a non-blank PNG; saves it to test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from ptsynth.evaluate import evaluate
from ptsynth.report import write_html_report
from ptsynth.table import ColumnDomain, EncodedTable

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _png_stats(data: bytes) -> tuple[int, int, int, float]:
    """(width, height, distinct filtered byte values, share of non-zero filtered bytes).

    A tiny PNG reader: checks the signature, reads IHDR, inflates the IDAT stream with zlib.
    Without unfiltering, a uniform image inflates to (almost) only zeros and one colour;
    a page with text and charts does not.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    return width, height, int(np.unique(raw).size), float(np.mean(raw != 0))


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_chromium(tmp_path: Path, record_property) -> None:
    rng = np.random.default_rng(4)
    doms = tuple(ColumnDomain(f"col{j}" + ("_with_a_very_long_name_" * 4 if j == 5 else ""),
                              tuple("abcde"[: 2 + j % 4]),
                              kind="ordinal" if j % 2 else "categorical",
                              quasi_identifier=j < 3, sensitive=j == 4) for j in range(7))
    n = 800
    base = rng.integers(0, 2, n)
    codes = np.stack([(base + rng.integers(0, 2, n)) % d.size for d in doms], 1)
    real = EncodedTable(codes, doms)
    syn = real.with_codes(np.stack([(base[rng.permutation(n)] + rng.integers(0, 2, n)) % d.size
                                    for d in doms], 1))
    ledger = {"total": {"epsilon": 1.0, "delta": 1e-9, "rho": 0.015},
              "entries": [{"query": f"step {i}", "rho": 0.005, "epsilon": 0.4} for i in range(3)]}
    report = evaluate(real, syn, holdout=real.take(np.arange(200)), target="col4", ledger=ledger,
                      n_attacks=100, dcr_sample=100, seed=0)
    # as the release pipeline merges it in: sizes, k-anonymity enforcement, warnings
    report["release_id"] = "20250101T000000Z-test"
    report["release"] = {
        "sizes": {"real_records": 800, "holdout_records": 200, "synthetic_records": 800,
                  "columns": 7, "aggregate_combinations": {1: 20, 2: 120, 3: 300}},
        "protection": {"k": 10, "reporting_length": 3, "columns": ["col0", "col1", "col2"],
                       "n_records_in": 800, "n_records_out": 796, "suppressed_cells": 31,
                       "suppressed_cell_share": 31 / 2400, "records_with_suppression": 29,
                       "record_suppression_share": 29 / 800, "dropped_records": 4,
                       "dropped_share": 4 / 800, "rounds": 2,
                       "final_check": {"ok": True, "k": 10, "reporting_length": 3,
                                       "columns": ["col0", "col1", "col2"],
                                       "smallest_count": 12}},
        "warnings": ["noise drawn from a seeded generator (seed 7): reproducible, "
                     "NOT FOR RELEASE"],
    }
    html = write_html_report(report, tmp_path / "report.html")
    url = html.resolve().as_uri()

    dom = _run(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-report-ready="1"' in dom.stdout, "inline script did not run"
    svgs = re.findall(r"<svg[^>]*data-chart=\"([^\"]+)\"[^>]*>", dom.stdout)
    assert len(svgs) >= 7 and "protection-suppression" in svgs
    assert 'data-release-alert="not-for-release"' in dom.stdout
    for tag in re.findall(r"<svg[^>]*data-chart=\"[^\"]+\"[^>]*>", dom.stdout):
        rendered = re.search(r'data-rendered-marks="(\d+)"', tag)
        assert rendered and int(rendered.group(1)) > 0, f"chart without visible marks: {tag}"
    clipped = [int(c) for c in re.findall(r'data-clipped-labels="(\d+)"', dom.stdout)]
    assert clipped and not any(clipped), "a chart label is drawn outside its chart"
    sizes = re.findall(r'data-rendered-size="([\d.]+)x([\d.]+)"', dom.stdout)
    assert any(float(w) > 0 and float(h) > 0 for w, h in sizes)

    out_dir = REPO / "test-artifacts"
    out_dir.mkdir(exist_ok=True)
    shot = out_dir / "report.png"
    res = _run([f"--screenshot={shot}", "--window-size=1280,2000", url],
               tmp_path / "profile-shot")
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    width, height, distinct, nonzero = _png_stats(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert distinct > 32 and nonzero > 0.001, "screenshot looks blank"
    print(f"screenshot: {shot}")
    record_property("screenshot", str(shot))
