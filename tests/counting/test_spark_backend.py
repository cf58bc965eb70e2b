"""The Spark backend counts exactly what the numpy backend counts, and a seeded release is the
same bundle whichever backend ran it (generated data: subject ids with repeated rows, set
columns, missing values). One local Spark session for the module; skipped without PySpark/Java.
"""

from __future__ import annotations

import csv
import filecmp
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - CI installs OpenJDK
    pytest.skip("Spark needs a Java runtime", allow_module_level=True)

from ptsynth.config import ReleaseConfig  # noqa: E402
from ptsynth.counting import NumpyBackend  # noqa: E402
from ptsynth.demo import demo_config_path, generate_demo  # noqa: E402
from ptsynth.errors import InputError  # noqa: E402
from ptsynth.ingest import read_records  # noqa: E402
from ptsynth.privacy import seeded_random  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    from ptsynth.ingest.spark import SparkSettings, spark_session

    session = spark_session(SparkSettings(master="local[2]", conf={
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "3"}))
    yield session


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark") / "cases.csv"
    generate_demo(900, 11, path)  # ~3% second rows of a person: exercises the merge
    return path


@pytest.fixture(scope="module")
def cfg() -> ReleaseConfig:
    return ReleaseConfig.load(demo_config_path())


@pytest.fixture(scope="module")
def both(spark, data: Path, cfg: ReleaseConfig):
    from ptsynth.ingest.spark import read_spark

    local = NumpyBackend(read_records(data, cfg.schema))
    return local, read_spark(str(data), cfg.schema, spark, partitions=3)


def test_ingest_gives_the_same_records(both) -> None:
    local, remote = both
    assert remote.record_count() == local.record_count() < 900  # rows merged per person
    table = remote.sample_table(10**6, (1, 2))  # every record, in file order
    np.testing.assert_array_equal(table.codes, local.table.codes)
    np.testing.assert_array_equal(
        np.sort(remote.rdd.map(lambda b: b[1]).reduce(lambda a, b: np.concatenate([a, b]))),
        np.sort(local.occurrence),
    )


def test_counts_are_identical(both) -> None:
    local, remote = both
    d = len(local.domains)
    sets = [(j,) for j in range(d)] + [(0, 5, 12), (3, 1), (), (7, 8, 30)]
    for a, b in zip(local.marginals(sets), remote.marginals(sets), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(local.present_attribute_histogram(),
                                  remote.present_attribute_histogram())
    maps = [np.minimum(np.arange(dom.size), 2) for dom in local.domains]
    from ptsynth.synth.pgm import _sized

    doms = [_sized(dom, 3) for dom in local.domains]
    for a, b in zip(local.recoded(maps, doms).marginals(sets[:-1]),
                    remote.recoded(maps, doms).marginals(sets[:-1]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bounded_combination_counts_are_identical(both) -> None:
    local, remote = both
    cols = np.array([[0, 1], [10, 11], [3, 20], [1, 31]])
    codes = np.array([[0, 0], [0, 0], [1, 0], [2, 0]])
    for m in (None, 4, 9):
        a = local.combination_counter(m, seeded_random(5)).combination_counts(cols, codes)
        b = remote.combination_counter(m, seeded_random(5)).combination_counts(cols, codes)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1]
    # the bound binds: fewer counted than without it
    assert (local.combination_counter(4, seeded_random(5)).combination_counts(cols, codes)[0]
            <= local.combination_counter(None, None).combination_counts(cols, codes)[0]).all()


def test_split_and_sample_are_identical(both) -> None:
    local, remote = both
    lk, lh = local.split(0.25, (3, 4))
    rk, rh = remote.split(0.25, (3, 4))
    assert (lk.record_count(), lh.record_count()) == (rk.record_count(), rh.record_count())
    np.testing.assert_array_equal(lh.table.codes, rh.sample_table(10**6, (0, 0)).codes)
    np.testing.assert_array_equal(lk.marginals([(0, 1)])[0], rk.marginals([(0, 1)])[0])
    a, b = local.sample_table(100, (9, 9)), remote.sample_table(100, (9, 9))
    assert a.n_records == 100
    np.testing.assert_array_equal(a.codes, b.codes)


@pytest.mark.parametrize("synthesizer", ["pgm", "aggregate"])
def test_seeded_bundles_are_identical(spark, data: Path, tmp_path: Path, synthesizer: str) -> None:
    import ptsynth

    out = {}
    for backend in ("local", "spark"):
        out[backend] = tmp_path / backend
        ptsynth.release(data, demo_config_path(), out[backend], epsilon=2.0, seed=8,
                        synthesizer=synthesizer, backend=backend,
                        evaluate_release=synthesizer == "aggregate")
    for name in ("synthetic.csv", "aggregates.csv", "aggregates.parquet"):
        assert filecmp.cmp(out["local"] / name, out["spark"] / name, shallow=False), name
    ledgers = [json.loads((out[b] / "budget.json").read_text())["entries"] for b in out]
    keys = ("query", "mechanism", "rho", "noise_scale")
    assert [[e.get(k) for k in keys] for e in ledgers[0]] == [[e.get(k) for k in keys]
                                                               for e in ledgers[1]]
    if synthesizer == "aggregate":  # the private evaluation reads the same records too
        reports = [json.loads((out[b] / "report.json").read_text()) for b in out]
        for section in ("utility", "risk", "evaluation_sample"):
            assert reports[0][section] == reports[1][section]


def _error(fn) -> InputError:
    with pytest.raises(InputError) as info:
        fn()
    return info.value


def test_input_errors_read_the_same(spark, data: Path, cfg: ReleaseConfig, tmp_path: Path) -> None:
    from ptsynth.ingest.spark import read_spark

    with open(data, newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    bad = [list(r) for r in rows]
    bad[41][header.index("gender")] = "Unknown"
    ragged = [list(r) for r in rows]
    ragged[17] = ragged[17] + ["extra"]
    conflict = [list(r) for r in rows]
    conflict[60][header.index("caseId")] = conflict[30][header.index("caseId")]
    conflict[60][header.index("dataSource")] = (
        "Hotline" if conflict[30][header.index("dataSource")] != "Hotline" else "Case management")
    cases = {"unknown value": bad, "ragged": ragged, "subject conflict": conflict}
    for name, content in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.csv"
        with open(path, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(content)
        want = _error(lambda p=path: read_records(p, cfg.schema))
        got = _error(lambda p=path: read_spark(str(p), cfg.schema, spark))
        assert (got.rule, got.row, got.column, got.more) == (want.rule, want.row, want.column,
                                                             want.more), name
        assert "Unknown" not in str(got)
