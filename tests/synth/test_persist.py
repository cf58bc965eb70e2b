"""A fitted synthesizer as a JSON document: round trip, refusal of foreign or altered files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptsynth.errors import BundleError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.synth import persist, registry
from synthetic_tables import chain_table


@pytest.fixture(scope="module", params=registry.names())
def fitted(request):
    table = chain_table(1200, (3, 4, 2, 3), seed=3)
    cls = registry.get(request.param)
    options = cls.Options(rounds=3, iters=10, final_iters=20) if request.param == "pgm" else cls.Options()
    synth = cls.create(options, reporting_length=2, k=5)
    synth.fit(table, Accountant(2.0, 1e-6, rng=seeded_random(0)))
    return table, synth


def test_round_trip_samples_the_same_records(fitted, tmp_path):
    table, synth = fitted
    path = persist.save(synth, tmp_path / "model.json")
    back = persist.load(path)
    assert type(back) is type(synth) and back.options == synth.options
    assert back.fitted_domains == table.domains
    a = synth.sample(300, seeded_random(9))
    b = back.sample(300, seeded_random(9))
    np.testing.assert_array_equal(a.codes, b.codes)
    assert back.dp_record_count == pytest.approx(synth.dp_record_count)


def test_the_document_is_plain_json_without_code(fitted, tmp_path):
    _, synth = fitted
    doc = json.loads(persist.save(synth, tmp_path / "m.json").read_text())
    assert doc["format"] == "ptsynth-synthesizer" and doc["version"] == 1
    assert doc["name"] == synth.name and len(doc["sha256"]) == 64


def test_altered_foreign_and_truncated_documents_are_refused(fitted, tmp_path):
    _, synth = fitted
    doc = persist.to_document(synth)
    altered = json.loads(json.dumps(doc))
    altered["options"]["balanced" if synth.name == "pgm" else "impute"] = False
    with pytest.raises(BundleError, match="checksum"):
        persist.from_document(altered)
    with pytest.raises(BundleError, match="not a ptsynth"):
        persist.from_document({"format": "pickle", "payload": "gASV"})
    with pytest.raises(BundleError, match="version"):
        persist.from_document({**doc, "version": 99})
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(doc)[:-200])
    with pytest.raises(BundleError, match="JSON"):
        persist.load(path)


def test_arrays_of_unknown_dtype_are_refused():
    with pytest.raises(BundleError, match="dtype"):
        persist.decode_array({"array": "object", "shape": [1], "data": ""}, "x")
    with pytest.raises(BundleError, match="length"):
        persist.decode_array({"array": "int64", "shape": [2], "data": "AAAAAAAAAAA="}, "x")
