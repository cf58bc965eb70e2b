"""``ptsynth.DPSynthesizer``: SDV's single-table shape over ptsynth's synthesizers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import ptsynth
from ptsynth import DPSynthesizer
from ptsynth.demo import demo_config_path
from ptsynth.errors import BundleError, ConfigError, NotFittedError
from ptsynth.privacy import rho_from_epsilon_delta
from ptsynth.progress import ProgressEvent
from ptsynth.schema import Schema

COLUMNS = ["caseId", "gender", "ageBroad", "age", "majorityStatus", "isForcedLabour",
           "isSexualExploit", "typeOfLabour", "registrationDate"]
#: Quick pgm settings: the tests check the interface, not the accuracy.
FAST = {"rounds": 4, "iters": 10, "final_iters": 30, "max_candidates": 50}
GENDERS = ["Woman", "Man", "Trans/Transgender/NonConforming"]


def _schema() -> Schema:
    full = ptsynth.ReleaseConfig.load(demo_config_path()).schema
    return Schema([full.column(c) for c in COLUMNS], subject_id="caseId")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return ptsynth.generate_demo(1500, 5)[COLUMNS]


@pytest.fixture(scope="module")
def fitted(frame: pd.DataFrame) -> DPSynthesizer:
    synth = DPSynthesizer(_schema(), epsilon=1.0, delta=1e-6, seed=4, **FAST)
    return synth.fit(frame)


def test_fit_and_sample_on_a_schema(fitted: DPSynthesizer) -> None:
    out = fitted.sample(400)
    assert len(out) == 400 and list(out.columns) == COLUMNS[1:]  # the subject id is never synthesized
    assert all(isinstance(t, pd.CategoricalDtype) for t in out.dtypes)
    assert out["ageBroad"].dtype.ordered and out["age"].dtype.ordered
    assert out["registrationDate"].dtype.ordered and not out["gender"].dtype.ordered
    assert list(out["age"].cat.categories) == list(_schema().column("age").labels)
    assert fitted.dp_record_count > 100
    with pytest.raises(ConfigError, match="num_rows"):
        fitted.sample(0)


def test_spends_exactly_its_budget(fitted: DPSynthesizer) -> None:
    ledger = fitted.get_budget()
    assert ledger.total["rho"] == pytest.approx(rho_from_epsilon_delta(1.0, 1e-6), rel=1e-6)
    assert ledger.total["epsilon"] <= 1.0 + 1e-9 and ledger.total["epsilon"] == pytest.approx(1.0)
    assert ledger.total["delta"] == 1e-6 and len(ledger.entries) > len(COLUMNS)
    assert all(e.seeded for e in ledger.entries)
    with pytest.raises(ConfigError, match="already spent"):
        fitted.fit(pd.DataFrame())


def test_the_seed_is_never_written_nor_shown(frame: pd.DataFrame, tmp_path: Path) -> None:
    """With the seed, anyone could redraw the noise of a seeded fit and subtract it."""
    synth = DPSynthesizer(_schema(), epsilon=1.0, method="aggregate", seed=987_654).fit(frame)
    text = synth.save(tmp_path / "m.json").read_text()
    assert "987654" not in text and "987654" not in repr(synth)
    assert "987654" not in json.dumps(synth.get_parameters())
    assert synth.get_parameters()["seeded"] is True


def test_release_status_says_not_for_release_when_seeded(fitted: DPSynthesizer) -> None:
    assert fitted.not_for_release and "seeded" in fitted.release_status
    assert "NOT FOR RELEASE" in repr(fitted)
    assert fitted.get_parameters()["release_status"].startswith("NOT FOR RELEASE")
    params = fitted.get_parameters()
    assert params["method"] == "aim" and params["synthesizer"] == "pgm"
    assert params["rounds"] == 4 and params["max_model_size"] == 4e5  # effective options


def test_save_and_load_round_trip(fitted: DPSynthesizer, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "model.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "ptsynth-dpsynthesizer" and doc["not_for_release"] is True
    assert "NOT FOR RELEASE" in doc["release_status"] and doc["parameters"]["seeded"] is True
    assert len(doc["created"]) == 10  # a date, no finer time
    back = DPSynthesizer.load(path)
    assert back.not_for_release and "seeded" in back.release_status
    assert back.get_parameters() == fitted.get_parameters()
    assert back.get_budget().to_dict() == fitted.get_budget().to_dict()
    assert back.get_schema().to_dict() == fitted.get_schema().to_dict()
    again = json.loads(back.save(tmp_path / "again.json").read_text())
    for key in ("model", "budget", "schema", "parameters"):
        assert again[key] == doc[key]
    out = back.sample(50)
    assert out.dtypes.to_dict() == fitted.sample(50).dtypes.to_dict()
    with pytest.raises(ConfigError, match="already spent"):
        back.fit(pd.DataFrame())


def test_tampered_foreign_and_truncated_files_are_refused(fitted: DPSynthesizer, tmp_path: Path) -> None:
    doc = json.loads(fitted.save(tmp_path / "m.json").read_text())

    def load(changed: object, name: str = "x.json") -> DPSynthesizer:
        path = tmp_path / name
        path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
        return DPSynthesizer.load(path)

    cheaper = {**doc, "parameters": {**doc["parameters"], "epsilon": 0.1}}
    with pytest.raises(BundleError, match="checksum"):
        load(cheaper)
    quieter = json.loads(json.dumps(doc))
    quieter["not_for_release"] = False
    with pytest.raises(BundleError, match="checksum"):
        load(quieter)
    with pytest.raises(BundleError, match="not a ptsynth DPSynthesizer"):
        load({"format": "pickle", "payload": "gASV"})
    with pytest.raises(BundleError, match="not a ptsynth DPSynthesizer"):
        load(doc["model"])  # a bare synthesizer document is another format
    with pytest.raises(BundleError, match="version"):
        load({**doc, "version": 2})
    with pytest.raises(BundleError, match="JSON"):
        load(json.dumps(doc)[:-500])
    with pytest.raises(BundleError, match="no such"):
        DPSynthesizer.load(tmp_path / "absent.json")
    # consistent checksums but a model that belongs to another schema
    import hashlib

    from ptsynth.dpsynthesizer import _canonical

    other = json.loads(json.dumps(doc))
    other["schema"]["columns"] = [c for c in other["schema"]["columns"] if c["name"] != "gender"]
    body = {k: v for k, v in other.items() if k != "sha256"}
    other["sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
    with pytest.raises(BundleError, match="does not match its schema"):
        load(other)


def test_unconfirmed_domains_refuse_then_flag(frame: pd.DataFrame, tmp_path: Path) -> None:
    sdv_md = {"METADATA_SPEC_VERSION": "V2", "relationships": [], "tables": {"cases": {
        "columns": {"gender": {"sdtype": "categorical", "range_values": GENDERS},
                    "age": {"sdtype": "numerical"}, "isForcedLabour": {"sdtype": "categorical"}}}}}
    data = frame[["gender", "age", "isForcedLabour"]]
    synth = DPSynthesizer(sdv_md, epsilon=1.0, method="aggregate")
    assert "no public domain for 3 column(s)" in repr(synth)
    with pytest.raises(ConfigError, match=r"no public domain for 3 column\(s\) \(gender, age, isForcedLabour\)"):
        synth.fit(data)
    assert synth.get_budget().entries == []  # refused before reading: nothing spent
    trial = DPSynthesizer(sdv_md, epsilon=1.0, method="aggregate", allow_unconfirmed_domains=True)
    trial.fit({"cases": data})
    assert not trial.seed and trial.not_for_release
    assert "read from the data" in trial.release_status and "NOT FOR RELEASE" in repr(trial)
    assert trial.get_parameters()["release_status"].startswith("NOT FOR RELEASE")
    saved = json.loads(trial.save(tmp_path / "trial.json").read_text())
    assert saved["not_for_release"] and saved["domains_from_data"] == ["gender", "age", "isForcedLabour"]
    assert DPSynthesizer.load(tmp_path / "trial.json").not_for_release
    # the same metadata with public domains is fine, and unseeded: nothing against a release
    public = DPSynthesizer(sdv_md, epsilon=1.0, method="aggregate",
                           domains={"gender": "metadata", "age": [0, 18, 50, 120],
                                    "isForcedLabour": ["1"]})
    public.fit(data)
    assert not public.not_for_release and public.release_status == "ok"
    assert "NOT FOR RELEASE" not in repr(public)
    assert not any(e.seeded for e in public.get_budget().entries)


def test_sdv_metadata_object_fit_sample_and_quality_report(frame: pd.DataFrame) -> None:
    pytest.importorskip("sdv")
    from sdv.evaluation import evaluate_quality
    from sdv.metadata import Metadata

    data = frame.drop(columns=["caseId"])
    metadata = Metadata.detect_from_dataframes({"cases": data})
    synth = DPSynthesizer(metadata, epsilon=2.0, domains=demo_config_path(), seed=1, **FAST)
    synth.fit({"cases": data})  # SDV 2.x passes a table by name; a DataFrame works too
    out = synth.sample(600)
    assert list(out.columns) == list(data.columns)
    real = synth.released_shape(data)
    assert list(real.dtypes) == list(out.dtypes)
    report = evaluate_quality(real, out, synth.get_metadata(), verbose=False)
    assert 0.5 < report.get_score() <= 1.0


def test_options_and_arguments_are_validated(frame: pd.DataFrame) -> None:
    schema = _schema()
    with pytest.raises(ConfigError, match="max_model_sise"):
        DPSynthesizer(schema, max_model_sise=1e5)
    with pytest.raises(ConfigError, match="max_model_size"):
        DPSynthesizer(schema, max_model_size=-1)
    with pytest.raises(ConfigError, match="method"):
        DPSynthesizer(schema, method="ctgan")
    with pytest.raises(ConfigError, match="epsilon"):
        DPSynthesizer(schema, epsilon=0)
    with pytest.raises(ConfigError, match="epsilon"):
        DPSynthesizer(schema, epsilon=math.inf)
    with pytest.raises(ConfigError, match="delta"):
        DPSynthesizer(schema, delta=1)
    with pytest.raises(ConfigError, match="domains"):
        DPSynthesizer(schema, domains={"gender": ["Woman"]})
    with pytest.raises(ConfigError, match="threshold_factor|unknown option"):
        DPSynthesizer(schema, method="aim", threshold_factor=2)  # an option of 'aggregate'
    synth = DPSynthesizer(schema, method="aggregate", threshold_factor=1.5)
    assert synth.get_parameters()["threshold_factor"] == 1.5
    with pytest.raises(NotFittedError):
        synth.sample(10)
    with pytest.raises(NotFittedError):
        synth.save("never.json")
    assert synth.get_budget().total["epsilon"] == 0 and synth.get_budget().entries == []


def test_progress_reaches_the_callback(frame: pd.DataFrame) -> None:
    events: list[ProgressEvent] = []
    DPSynthesizer(_schema(), epsilon=1.0, seed=2, **FAST).fit(frame, progress=events.append)
    tasks = [e.task for e in events if e.finished]
    assert tasks[0] == "read" and "measure" in tasks and tasks[-1] == "estimate"
    read = [e for e in events if e.task == "read"]
    assert read[-1].unit == "rows" and read[-1].completed == len(frame)
    steps = [e for e in events if e.task == "estimate" and not e.finished]
    assert steps[-1].completed == FAST["final_iters"] == steps[-1].total


def test_works_without_sdv_installed(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sdv", None)
    monkeypatch.setitem(sys.modules, "sdv.metadata", None)
    synth = DPSynthesizer(_schema(), epsilon=1.0, method="aggregate").fit(frame)
    assert len(synth.sample(20)) == 20
    with pytest.raises(ConfigError, match=r"pip install 'ptsynth\[sdv\]'"):
        synth.get_metadata()


def test_a_config_with_a_lifetime_ledger_is_charged(frame: pd.DataFrame, tmp_path: Path) -> None:
    from ptsynth.errors import BudgetExceededError
    from ptsynth.privacy import DatasetLedger

    path = tmp_path / "ledger.json"
    DatasetLedger.create(path, lifetime_epsilon=1.5, lifetime_delta=1e-5)
    settings = ptsynth.ReleaseConfig.load(demo_config_path()).to_dict()
    settings["columns"] = [c for c in settings["columns"] if c["name"] in COLUMNS]
    settings["dataset"]["ledger"] = str(path)
    config = ptsynth.ReleaseConfig.from_dict(settings)
    one = rho_from_epsilon_delta(1.0, 1e-6)
    for _ in range(2):  # two fits of epsilon = 1 fit in a lifetime of 1.5 at delta 1e-5 (zCDP)
        DPSynthesizer(config, epsilon=1.0, method="aggregate").fit(frame)
    assert DatasetLedger(path).spent_rho == pytest.approx(2 * one)
    third = DPSynthesizer(config, epsilon=1.0, method="aggregate")
    with pytest.raises(BudgetExceededError):
        third.fit(frame)
    assert third.get_budget().entries == [] and not third.fitted
    assert DatasetLedger(path).spent_rho == pytest.approx(2 * one)


def test_dp_bin_edges_are_measured_with_a_config_and_refused_without(frame: pd.DataFrame) -> None:
    settings = ptsynth.ReleaseConfig.load(demo_config_path()).to_dict()
    settings["columns"] = [c for c in settings["columns"] if c["name"] in COLUMNS]
    age = next(c for c in settings["columns"] if c["name"] == "age")
    age.update(bins="dp-quantiles", count=4, range=[0, 120], resolution=1)
    age.pop("labels", None)
    config = ptsynth.ReleaseConfig.from_dict(settings)
    synth = DPSynthesizer(config, epsilon=1.0, method="aggregate", seed=8).fit(frame)
    edges = synth.get_schema().column("age").bins
    assert len(edges) == 5 and edges[0] == 0 and edges[-1] == 120  # measured interior edges
    assert any("dp bin" in e.query.lower() or "quantile" in e.query.lower()
               for e in synth.get_budget().entries)
    assert synth.get_budget().total["epsilon"] == pytest.approx(1.0)  # within the same budget
    assert list(synth.sample(30)["age"].cat.categories) == list(synth.get_schema().column("age").labels)
    with pytest.raises(ConfigError, match="dp-quantiles"):
        DPSynthesizer(config.schema, epsilon=1.0)


def test_a_config_sets_the_budget_and_arguments_override_it(frame: pd.DataFrame) -> None:
    """[privacy] and [release] of a release config are the defaults: a steward whose config
    says epsilon = 0.3 spends 0.3, not the constructor's 1.0."""
    settings = ptsynth.ReleaseConfig.load(demo_config_path()).to_dict()
    settings["columns"] = [c for c in settings["columns"] if c["name"] in COLUMNS]
    settings["privacy"] = {"epsilon": 0.3, "delta": 1e-7}
    settings["release"] = {**settings.get("release", {}), "k": 5, "reporting_length": 2}
    config = ptsynth.ReleaseConfig.from_dict(settings)
    synth = DPSynthesizer(config, method="aggregate")
    assert (synth.epsilon, synth.delta, synth.k, synth.reporting_length) == (0.3, 1e-7, 5, 2)
    synth.fit(frame)
    assert synth.get_budget().total["rho"] == pytest.approx(rho_from_epsilon_delta(0.3, 1e-7),
                                                          rel=1e-6)
    assert DPSynthesizer(config, epsilon=0.5, k=7).epsilon == 0.5
    assert DPSynthesizer(Schema.from_dict(settings["columns"])).epsilon == 1.0
