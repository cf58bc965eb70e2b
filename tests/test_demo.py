"""Demo generator: determinism, schema conformance, realistic dependencies, streaming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ptsynth import demo
from ptsynth.config import ReleaseConfig
from ptsynth.demo import COLUMNS, demo_config_path, generate_demo
from ptsynth.ingest import read_records
from ptsynth.ingest.propose import GENERAL_WARNING, write_starter_config


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_demo(20_000, seed=7)


@pytest.fixture(scope="module")
def config() -> ReleaseConfig:
    return ReleaseConfig.load(demo_config_path())


def test_columns_and_determinism(frame):
    assert list(frame.columns) == list(COLUMNS)
    assert 20 <= len(COLUMNS) <= 27
    assert len(frame) == 20_000
    pd.testing.assert_frame_equal(generate_demo(500, seed=3), generate_demo(500, seed=3))
    assert not generate_demo(500, seed=3).equals(generate_demo(500, seed=4))


def test_conforms_to_packaged_config_and_merges(frame, config):
    table = read_records(frame, config.schema)
    n_people = frame["caseId"].nunique()
    assert table.n_records == n_people
    assert 0.02 < 1 - n_people / len(frame) < 0.04  # ~3% second rows
    assert table.column_names == tuple(d.name for d in config.schema.encoded_domains())


def test_second_rows_are_consistent(frame):
    dup = frame[frame.duplicated("caseId", keep=False)]
    assert len(dup) > 0
    single = [c for c in COLUMNS if c not in ("caseId", "typeOfLabour", "typeOfSex", "recruiterRelation")]
    for col in single:
        nunique = dup.groupby("caseId")[col].nunique(dropna=True)
        assert (nunique <= 1).all(), col


def test_internal_consistency(frame):
    known = frame["ageBroad"].notna() & frame["majorityStatus"].notna()
    minor = frame.loc[known, "ageBroad"].isin(["0--8", "9--17"])
    assert ((frame.loc[known, "majorityStatus"] == "Minor") == minor).all()
    both = frame["age"].notna() & frame["ageBroad"].notna()
    lo = frame.loc[both, "ageBroad"].str.extract(r"^(\d+)")[0].astype(int)
    assert (frame.loc[both, "age"].astype(int) >= lo).all()
    dated = frame["registrationDate"].notna()
    years = frame.loc[dated, "registrationDate"].str[:4].astype(int)
    assert (years == frame.loc[dated, "yearOfRegistration"]).all()
    assert (frame.loc[frame["dataSource"] == "Hotline", "yearOfRegistration"] >= 2015).all()
    person = frame.assign(fl=frame["isForcedLabour"] == "1", tl=frame["typeOfLabour"].notna())
    person = person.groupby("caseId")[["fl", "tl"]].any()
    assert person.loc[person["tl"], "fl"].all()  # a type of labour implies forced labour


def test_realistic_dependencies(frame):
    sex = frame["isSexualExploit"] == "1"
    labour = frame["isForcedLabour"] == "1"
    woman = frame["gender"] == "Woman"
    assert woman[sex].mean() > 0.8
    assert (frame["gender"] == "Man")[labour].mean() > 0.5
    young = frame["ageBroad"].isin(["9--17", "18--20", "21--23"])
    assert young[sex].mean() > young[labour].mean() + 0.2
    gulf = frame["CountryOfExploitation"].isin(["SAU", "ARE", "KWT"])
    assert labour[gulf].mean() > labour.mean() + 0.15
    domestic = frame["citizenship"] == frame["CountryOfExploitation"]
    assert 0.15 < domestic.mean() < 0.6
    legacy_missing = frame.loc[frame["yearOfRegistration"] < 2012, "registrationDate"].isna().mean()
    assert legacy_missing == 1.0
    counts = frame["yearOfRegistration"].value_counts()
    assert counts[2018] > 3 * counts[2003]


def test_streams_chunks_to_csv_and_parquet(tmp_path, monkeypatch, config):
    monkeypatch.setattr(demo, "CHUNK_ROWS", 700)
    expected = generate_demo(2_000, seed=11)
    assert expected["caseId"].nunique() < 2_000
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    assert generate_demo(2_000, seed=11, path=csv) is None
    generate_demo(2_000, seed=11, path=parquet)
    from_csv = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert len(from_csv) == 2_000 and list(from_csv.columns) == list(COLUMNS)
    assert from_csv["caseId"].tolist() == expected["caseId"].tolist()
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), expected, check_dtype=False)
    a = read_records(csv, config.schema)
    b = read_records(parquet, config.schema)
    np.testing.assert_array_equal(a.codes, b.codes)
    assert not list(tmp_path.glob("*.part"))


def test_small_and_invalid_sizes():
    assert len(generate_demo(2, seed=0)) == 2
    with pytest.raises(ValueError):
        generate_demo(1, seed=0)


def test_starter_config_from_demo(tmp_path):
    data = tmp_path / "demo.csv"
    generate_demo(600, seed=5, path=data)
    out = tmp_path / "starter.toml"
    warnings = write_starter_config(data, out)
    assert warnings[0] == GENERAL_WARNING
    text = out.read_text()
    assert "READ FROM THE SENSITIVE RECORDS" in text.splitlines()[3]
    cfg = ReleaseConfig.load(out)
    assert cfg.domains_confirmed is False
    kinds = {c.name: c.kind for c in cfg.schema.columns}
    assert kinds["caseId"] == "subject_id" and kinds["typeOfLabour"] == "set"
    assert kinds["age"] == "numeric" and kinds["registrationDate"] == "date"
    table = read_records(data, cfg.schema)  # the proposal accepts the data it came from
    assert table.n_records == pd.read_csv(data, dtype=str)["caseId"].nunique()
    values = set(pd.read_csv(data, dtype=str, keep_default_na=False)["citizenship"]) - {""}
    assert not any(v in w for w in warnings for v in values)  # warnings never carry values


@pytest.mark.slow
def test_large_generation_bounded_chunks(tmp_path, config):
    path = tmp_path / "big.parquet"
    generate_demo(450_000, seed=1, path=path)
    table = read_records(path, config.schema)
    assert 430_000 < table.n_records < 440_000
