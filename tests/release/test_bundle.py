"""A released bundle read back: typed synthetic records (Parquet), SDV metadata, SDV's reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import ptsynth
from ptsynth.demo import demo_config_path
from ptsynth.errors import BundleError


@pytest.fixture(scope="module")
def release(demo_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> ptsynth.Release:
    out = tmp_path_factory.mktemp("bundle") / "b"
    return ptsynth.release(demo_csv, demo_config_path(), out, epsilon=2.0, seed=6,
                           synthesizer="aggregate", evaluate_release=False)


def test_synthetic_records_are_typed_everywhere(release: ptsynth.Release) -> None:
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
    strings = pd.read_csv(release.out_dir / "synthetic.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(schema.as_typed(strings), frame)
    bundle = ptsynth.Bundle.load(release.out_dir)
    pd.testing.assert_frame_equal(bundle.synthetic, frame)
    pd.testing.assert_frame_equal(bundle.synthetic_strings, strings)


def test_new_files_are_public_and_hashed(release: ptsynth.Release) -> None:
    manifest = json.loads((release.out_dir / "manifest.json").read_text())
    for name in ("synthetic.parquet", "metadata.json"):
        assert name in manifest["files"]["public"] and name in manifest["outputs"]


def test_an_altered_parquet_file_is_refused(release: ptsynth.Release, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(release.out_dir, copy)
    frame = pd.read_parquet(copy / "synthetic.parquet")
    frame.iloc[:5].to_parquet(copy / "synthetic.parquet", index=False)
    with pytest.raises(BundleError, match="synthetic.parquet does not match"):
        ptsynth.Bundle.load(copy)


def test_a_bundle_without_parquet_is_read_from_its_csv(release: ptsynth.Release, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "older"
    shutil.copytree(release.out_dir, copy)
    (copy / "synthetic.parquet").unlink()
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["outputs"].pop("synthetic.parquet")
    manifest["files"]["public"].remove("synthetic.parquet")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    pd.testing.assert_frame_equal(ptsynth.Bundle.load(copy).synthetic, release.synthetic)


def test_metadata_json_is_sdv_metadata_of_the_released_records(release: ptsynth.Release) -> None:
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


def test_sdv_reports_run_on_the_bundle_as_it_is(release: ptsynth.Release, demo_csv: Path) -> None:
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
