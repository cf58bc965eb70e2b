"""The bundle as a type: a release read back from its public files, and refused when altered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ptsynth
from ptsynth.aggregates import AggregateRelease, measure_aggregates
from ptsynth.demo import demo_config_path
from ptsynth.errors import BundleError, ConfigError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.release.bundle import PRIVATE_FILES, PUBLIC_FILES, Bundle, BundleWriter
from ptsynth.table import ColumnDomain, EncodedTable


@pytest.fixture(scope="module", params=["pgm", "aggregate"])
def released(request, demo_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "b"
    rel = ptsynth.release(demo_csv, demo_config_path(), out, epsilon=2.0, seed=3,
                          synthesizer=request.param)
    return rel, out


def test_round_trip_of_every_public_part(released):
    rel, out = released
    b = Bundle.load(out)
    assert b.release_id == rel.manifest["release_id"] and b.seeded
    pd.testing.assert_frame_equal(b.synthetic, rel.synthetic.astype(str), check_dtype=False)
    again = b.schema.decode(b.synthetic_table)  # encode → decode is the identity
    pd.testing.assert_frame_equal(again.astype(str), b.synthetic, check_dtype=False)
    assert b.synthetic_table.domains == b.schema.encoded_domains()
    agg = b.aggregates
    assert agg.record_count == rel.aggregates.record_count
    assert agg.by_length() == rel.aggregates.by_length()
    for ell in agg.counts:
        np.testing.assert_array_equal(agg.counts[ell], rel.aggregates.counts[ell])
        np.testing.assert_array_equal(agg.combinations[ell], rel.aggregates.combinations[ell])
    if b.synthesizer == "aggregate":  # measured with noise: σ per length is published
        assert agg.sigma(1) == pytest.approx(rel.aggregates.lengths[0].sigma)
    else:  # counted on the DP synthetic records: no noise of their own
        assert agg.sigma(1) is None
    assert b.ledger.total == rel.ledger.total and b.epsilon <= 2.0 + 1e-9


def test_private_files_are_never_needed_nor_opened(released, tmp_path):
    _, out = released
    copy = tmp_path / "public-only"
    shutil.copytree(out, copy)
    for name in PRIVATE_FILES:
        (copy / name).unlink(missing_ok=True)
    b = Bundle.load(copy)
    assert len(b.synthetic) > 0 and b.aggregates.record_count > 0
    with pytest.raises(BundleError, match="never published"):
        b.private_report()
    assert set(b.manifest["files"]["public"]) <= set(PUBLIC_FILES)


def test_the_steward_can_open_the_private_report_explicitly(released):
    _, out = released
    report = Bundle.load(out).private_report()
    assert report["visibility"].startswith("private")


@pytest.mark.parametrize("damage", ["csv", "ledger", "manifest", "version", "missing", "nofolder"])
def test_an_altered_or_incomplete_bundle_is_refused(released, tmp_path, damage):
    _, out = released
    copy = tmp_path / "b"
    shutil.copytree(out, copy)
    if damage == "csv":
        with open(copy / "synthetic.csv", "a", encoding="utf-8") as fh:
            fh.write(",".join(["x"] * 3) + "\n")
        match = "synthetic.csv does not match"
    elif damage == "ledger":
        led = json.loads((copy / "budget.json").read_text())
        led["entries"][0]["rho"] /= 2
        (copy / "budget.json").write_text(json.dumps(led))
        match = "budget.json"
    elif damage == "manifest":
        (copy / "manifest.json").write_text("{not json")
        match = "readable JSON"
    elif damage == "version":
        man = json.loads((copy / "manifest.json").read_text())
        man["schema_version"] = 99
        (copy / "manifest.json").write_text(json.dumps(man))
        match = "unknown bundle version"
    elif damage == "missing":
        (copy / "aggregates.parquet").unlink()
        match = "missing"
    else:
        copy = tmp_path / "nothing-here"
        match = "not a bundle folder"
    with pytest.raises(BundleError, match=match):
        Bundle.load(copy)


def test_aggregate_parquet_reader_round_trip_with_awkward_labels(tmp_path):
    doms = (ColumnDomain("a;b", ("x;1", "y:2"), allows_missing=True),
            ColumnDomain("c", ("p", "q", "r"), allows_missing=False))
    rng = np.random.default_rng(0)
    codes = np.stack([rng.integers(0, 3, 800), rng.integers(0, 3, 800)], axis=1)
    table = EncodedTable(codes, doms)
    agg = measure_aggregates(table, Accountant(4.0, 1e-6, rng=seeded_random(1)),
                             reporting_length=2, k=2)
    path = agg.write_parquet(tmp_path / "agg.parquet")
    back = AggregateRelease.read_parquet(path, doms)
    assert back.record_count == agg.record_count and back.by_length() == agg.by_length()
    assert [s.sigma for s in back.lengths] == pytest.approx([s.sigma for s in agg.lengths])
    for ell in agg.counts:
        np.testing.assert_array_equal(back.counts[ell], agg.counts[ell])
    with pytest.raises(BundleError, match="no ptsynth aggregate metadata"):
        pd.DataFrame({"selections": ["record_count"], "protected_count": [1]}).to_parquet(
            tmp_path / "foreign.parquet")
        AggregateRelease.read_parquet(tmp_path / "foreign.parquet", doms)


def test_writer_is_atomic_and_refuses_bad_output_paths(tmp_path):
    target = tmp_path / "out"
    with BundleWriter(target) as w:
        (w.path("synthetic.csv")).write_text("a\n1\n")
        staging = w.staging
        assert staging.parent == tmp_path and not target.exists()
    assert not staging.exists() and not target.exists()  # left without commit: discarded
    with BundleWriter(target) as w:
        w.path("synthetic.csv").write_text("a\n1\n")
        w.commit()
    assert (target / "synthetic.csv").is_file()
    with pytest.raises(ConfigError, match="--overwrite"):
        BundleWriter(target)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        BundleWriter(afile, overwrite=True)
    assert not any(p.name.startswith(".out.") for p in Path(tmp_path).iterdir())
