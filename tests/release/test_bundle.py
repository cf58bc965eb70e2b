"""The bundle as a type: a release read back from its public files, and refused when altered;
its typed synthetic records (Parquet) and SDV metadata, which SDV's own reports read as they are."""

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
from ptsynth.release.bundle import (
    PRIVATE_FILES,
    PUBLIC_FILES,
    Bundle,
    BundleWriter,
    read_public_csv,
)
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
    pd.testing.assert_frame_equal(b.synthetic, rel.synthetic)
    again = b.schema.decode(b.synthetic_table)  # encode → decode is the identity
    pd.testing.assert_frame_equal(again.astype(str), b.synthetic_strings, check_dtype=False)
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
    import pyarrow.parquet as pq

    from ptsynth.aggregates.artefact import PARQUET_METADATA_KEY

    frame = agg.to_frame()
    meta = json.loads(pq.read_schema(path).metadata[PARQUET_METADATA_KEY])
    broken = frame.astype({"protected_count": object})
    broken.loc[1, "protected_count"] = "many"
    with pytest.raises(BundleError, match="whole numbers"):
        AggregateRelease.from_frame(broken, doms, meta, source="agg.parquet")
    twice = frame.copy()
    twice.loc[1, "selections"] = "c:p;c:q"  # two values of one column: no combination
    with pytest.raises(BundleError, match="no known attribute combination"):
        AggregateRelease.from_frame(twice, doms, meta, source="agg.parquet")


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


# -- typed records and SDV metadata ------------------------------------------------------------
def test_synthetic_records_are_typed_everywhere(released) -> None:
    release, _ = released
    schema = ptsynth.ReleaseConfig.load(demo_config_path()).schema
    frame = release.synthetic
    assert all(isinstance(t, pd.CategoricalDtype) for t in frame.dtypes)
    assert frame["ageBroad"].dtype.ordered and frame["yearOfRegistration"].dtype.ordered
    assert frame["age"].dtype.ordered and frame["registrationDate"].dtype.ordered
    assert not frame["gender"].dtype.ordered and not frame["typeOfLabour"].dtype.ordered
    assert list(frame["ageBroad"].cat.categories) == list(schema.column("ageBroad").values)
    # the Parquet file holds exactly that frame, readable by plain pandas
    parquet = pd.read_parquet(release.out_dir / "synthetic.parquet")
    pd.testing.assert_frame_equal(parquet, frame)
    # and the CSV holds the same records as strings
    strings = read_public_csv(release.out_dir / "synthetic.csv")
    pd.testing.assert_frame_equal(schema.as_typed(strings), frame)
    bundle = ptsynth.Bundle.load(release.out_dir)
    pd.testing.assert_frame_equal(bundle.synthetic, frame)
    pd.testing.assert_frame_equal(bundle.synthetic_strings, strings)


def test_new_files_are_public_and_hashed(released) -> None:
    release, _ = released
    manifest = json.loads((release.out_dir / "manifest.json").read_text())
    for name in ("synthetic.parquet", "metadata.json"):
        assert name in manifest["files"]["public"] and name in manifest["outputs"]


def test_an_altered_parquet_file_is_refused(released, tmp_path: Path) -> None:
    release, _ = released
    copy = tmp_path / "b"
    shutil.copytree(release.out_dir, copy)
    frame = pd.read_parquet(copy / "synthetic.parquet")
    frame.iloc[:5].to_parquet(copy / "synthetic.parquet", index=False)
    with pytest.raises(BundleError, match="synthetic.parquet does not match"):
        ptsynth.Bundle.load(copy)


def test_a_bundle_without_parquet_is_read_from_its_csv(released, tmp_path: Path) -> None:
    release, _ = released
    copy = tmp_path / "older"
    shutil.copytree(release.out_dir, copy)
    (copy / "synthetic.parquet").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["outputs"].pop("synthetic.parquet")
    manifest["files"]["public"].remove("synthetic.parquet")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(ptsynth.Bundle.load(copy).synthetic, release.synthetic)


def test_metadata_json_is_sdv_metadata_of_the_released_records(released) -> None:
    release, _ = released
    doc = json.loads((release.out_dir / "metadata.json").read_text())
    assert doc["METADATA_SPEC_VERSION"] == "V2"
    (table,) = doc["tables"].values()
    assert list(table["columns"]) == list(release.synthetic.columns)
    assert "primary_key" not in table  # the subject id is never released
    assert table["columns"]["ageBroad"]["sdtype"] == "ordinal"
    assert table["columns"]["age"] == {  # numeric bins are released as ordered labels
        "sdtype": "ordinal", "range_is_nullable": True,
        "range_values": ["[0, 12)", "[12, 18)", "[18, 25)", "[25, 35)", "[35, 50)", "[50, 120)"]}


def _tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 - TVD of one column's value shares, missing values left out (as SDMetrics does)."""
    p = real.astype(object).value_counts(normalize=True)
    q = synthetic.astype(object).value_counts(normalize=True)
    cells = p.index.union(q.index)
    return 1.0 - 0.5 * float((p.reindex(cells, fill_value=0) - q.reindex(cells, fill_value=0)).abs().sum())


def test_sdv_reports_run_on_the_bundle_as_it_is(released, demo_csv: Path) -> None:
    release, _ = released
    pytest.importorskip("sdv")
    from sdv.evaluation import evaluate_quality, run_diagnostic
    from sdv.metadata import Metadata

    bundle = release.out_dir
    metadata = Metadata.load_from_json(str(bundle / "metadata.json"))
    # the steward's real records in the released shape (private: never published)
    schema = ptsynth.ReleaseConfig.load(demo_config_path()).schema
    real = schema.decode(ptsynth.read_records(demo_csv, schema), typed=True)
    for synthetic in (pd.read_parquet(bundle / "synthetic.parquet"),
                      pd.read_csv(bundle / "synthetic.csv", dtype=str)):
        typed = isinstance(synthetic.dtypes.iloc[0], pd.CategoricalDtype)
        real_view = real if typed else real.astype(object).where(real.notna(), None)
        quality = evaluate_quality(real_view, synthetic, metadata, verbose=False)
        assert 0.0 < quality.get_score() <= 1.0
        # SDV read the released values as they are: its per-column scores are ours
        shapes = quality.get_details("Column Shapes").set_index("Column")["Score"].dropna()
        assert len(shapes) >= 20
        for column, score in shapes.items():
            assert score == pytest.approx(_tv_complement(real[column], synthetic[column]), abs=1e-6)
        diagnostic = run_diagnostic(real_view, synthetic, metadata, verbose=False)
        properties = diagnostic.get_properties().set_index("Property")["Score"]
        assert properties["Data Structure"] == 1.0
        assert 0.5 < diagnostic.get_score() <= 1.0
    assert ptsynth.Bundle.load(bundle).sdv_metadata().to_dict() == metadata.to_dict()


def test_a_release_read_from_a_database_loads_and_hides_its_source(demo_csv, tmp_path) -> None:
    """The manifest reduces the source to its kind and the backend to its name (an address, a
    query or a Spark setting may be private), and the bundle still loads and answers queries."""
    import sqlite3

    from ptsynth.query import count

    db = tmp_path / "cases.sqlite"
    with sqlite3.connect(db) as con:
        pd.read_csv(demo_csv, dtype=str, keep_default_na=False).to_sql("cases", con, index=False)
    text = demo_config_path().read_text(encoding="utf-8")
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text + f'\n[dataset.source]\nurl = "sqlite:///{db}"\nquery = "SELECT * FROM '
                   'cases WHERE 1 = 1"\n\n[dataset.backend]\nname = "local"\n'
                   '[dataset.backend.conf]\n"spark.hadoop.fs.s3a.secret.key" = "S3CR3T"\n',
                   encoding="utf-8")
    out = tmp_path / "b"
    ptsynth.release(None, cfg, out, epsilon=2.0, seed=3, synthesizer="aggregate")
    manifest = (out / "manifest.json").read_text(encoding="utf-8")
    for private in ("S3CR3T", "WHERE 1 = 1", str(db)):
        assert private not in manifest
    bundle = Bundle.load(out)
    assert bundle.manifest["config"]["dataset"]["backend"] == {"name": "local"}
    assert count(bundle).rows[0].estimate > 0
