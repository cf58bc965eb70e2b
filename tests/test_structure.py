"""Hierarchies and structural zeros: parsing, validation, the encoded boxes, round trips."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.config import ReleaseConfig
from ptsynth.errors import SchemaError
from ptsynth.structure import (
    StructuralZero,
    combinations_in_zeros,
    violations,
    zero_cliques,
    zero_table,
)

BASE = {
    "dataset": {"name": "t"},
    "privacy": {"epsilon": 1.0, "delta": 1e-6},
    "columns": [
        {"name": "country", "kind": "categorical", "values": ["UKR", "MDA", "PHL", "IDN"]},
        {"name": "region", "kind": "categorical", "values": ["Europe", "Asia", "Africa"]},
        {"name": "band", "kind": "ordinal", "values": ["0--8", "9--17", "18--29", "30+"]},
        {"name": "majority", "kind": "categorical", "values": ["Adult", "Minor"],
         "missing": "forbid"},
        {"name": "age", "kind": "numeric", "bins": [0, 18, 120]},
        {"name": "labour", "kind": "set", "values": ["Domestic", "Mining", "Sex"]},
    ],
    "hierarchies": [
        {"column": "country", "parent": "region",
         "groups": {"Europe": ["UKR", "MDA"], "Asia": ["PHL", "IDN"]}},
        {"name": "bands", "column": "band", "parent": "majority",
         "map": {"0--8": "Minor", "9--17": "Minor", "18--29": "Adult", "30+": "Adult"}},
        {"column": "country", "parent": "continent level",
         "map": {"UKR": "Eurasia", "MDA": "Eurasia", "PHL": "Eurasia", "IDN": "Oceania"}},
    ],
    "constraints": [
        {"name": "minors", "forbid": {"majority": ["Minor"], "labour": ["Mining", "Sex"]}},
        {"name": "ages", "forbid": {"age": ["[0, 18)"], "majority": ["Adult"]}},
    ],
}


def _cfg(data=None):
    return ReleaseConfig.from_dict(copy.deepcopy(BASE if data is None else data))


def _brute_force_impossible(record: dict[str, str | None]) -> bool:
    """The declared structure of BASE, written out by hand."""
    europe, asia = {"UKR", "MDA"}, {"PHL", "IDN"}
    c, r = record["country"], record["region"]
    if c is not None and r is not None and (
        (c in europe and r != "Europe") or (c in asia and r != "Asia")
    ):
        return True
    b, m = record["band"], record["majority"]
    if b is not None and m is not None and (b in ("0--8", "9--17")) != (m == "Minor"):
        return True
    if m == "Minor" and ({"Mining", "Sex"} & set(record["labour"])):
        return True
    return record["age"] == "[0, 18)" and m == "Adult"


def test_schema_exposes_hierarchies_and_structural_zeros():
    schema = _cfg().schema
    assert [h.name for h in schema.hierarchies] == [
        "country → region", "bands", "country → continent level"]
    h = schema.hierarchy("country")[0]
    assert h.parent_of("MDA") == "Europe" and h.children("Asia") == ("PHL", "IDN")
    assert h.generalise(["UKR", None, "IDN"]) == ["Europe", None, "Asia"]
    # a level that is not a column gives no zero; the others do
    origins = {z.origin for z in schema.structural_zeros}
    assert origins == {"hierarchy 'country → region'", "hierarchy 'bands'",
                       "constraint 'minors'", "constraint 'ages'"}
    # a set column listed with two members is the union of one box per member
    minors = [z for z in schema.structural_zeros if z.origin == "constraint 'minors'"]
    assert sorted(z.columns for z in minors) == [("majority", "labour=Mining"),
                                                 ("majority", "labour=Sex")]
    assert zero_cliques(schema.structural_zeros, [d.name for d in schema.encoded_domains()])


def test_encoded_zeros_equal_the_declared_structure_on_every_record():
    """Every combination of codes (missing included) is impossible iff the hand-written rule
    says so: the boxes are exactly the declared structure."""
    schema = _cfg().schema
    doms = schema.encoded_domains()
    names = [d.name for d in doms]
    grids = [range(d.size) for d in doms]
    records = np.array(list(itertools.product(*grids)), dtype=np.int64)
    got = violations(schema.structural_zeros, records, names)
    labour = [v for v in ("Domestic", "Mining", "Sex")]
    expected = []
    for row in records:
        rec: dict = {}
        for d, code in zip(doms, row, strict=True):
            if d.kind == "set_member":
                continue
            rec[d.name] = d.label(int(code))
        rec["labour"] = [v for v in labour if row[names.index(f"labour={v}")] == 0]
        expected.append(_brute_force_impossible(rec))
    assert np.array_equal(got, np.array(expected))
    assert 0 < got.sum() < len(got)


def test_zero_table_matches_violations_on_its_columns():
    schema = _cfg().schema
    doms = schema.encoded_domains()
    names = [d.name for d in doms]
    sizes = [d.size for d in doms]
    for clique in zero_cliques(schema.structural_zeros, names):
        table = zero_table(schema.structural_zeros, clique, names, sizes)
        assert table is not None and table.shape == tuple(sizes[j] for j in clique)
        zeros_here = [z for z in schema.structural_zeros
                      if set(z.indices(names)) <= set(clique)]
        for cell in itertools.product(*[range(sizes[j]) for j in clique]):
            rec = np.zeros((1, len(names)), dtype=np.int64)
            rec[0, list(clique)] = cell
            assert table[cell] == bool(violations(zeros_here, rec, names)[0])


def test_missing_never_takes_part_in_a_structural_zero():
    schema = _cfg().schema
    doms = schema.encoded_domains()
    for z in schema.structural_zeros:
        for col, codes in zip(z.columns, z.codes, strict=True):
            dom = doms[[d.name for d in doms].index(col)]
            assert dom.missing_code not in codes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 4)), min_size=1, max_size=4,
                unique_by=lambda t: t[0]))
def test_combinations_in_zeros_is_containment_of_a_box(attrs):
    zeros = (StructuralZero(("a", "b"), ((0, 1), (2,))), StructuralZero(("c",), ((3,),)))
    names = ["a", "b", "c", "d", "e", "f"]
    cols = np.array([[c for c, _ in attrs]])
    codes = np.array([[k for _, k in attrs]])
    held = dict(attrs)
    expected = (held.get(0) in (0, 1) and held.get(1) == 2) or held.get(2) == 3
    assert bool(combinations_in_zeros(zeros, cols, codes, names)[0]) == expected


def test_structure_round_trips_through_the_config_and_the_released_schema():
    cfg = _cfg()
    again = ReleaseConfig.from_dict(cfg.to_dict())
    assert again.schema.structural_zeros == cfg.schema.structural_zeros
    assert again.schema.hierarchies == cfg.schema.hierarchies
    released = cfg.schema.released()
    assert released.structural_zeros == cfg.schema.structural_zeros  # same labels, same codes
    z = cfg.schema.structural_zeros[0]
    assert StructuralZero.from_dict(z.to_dict()) == z


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["hierarchies"][0]["groups"]["Asia"].remove("IDN"), "1 value(s) unmapped"),
        (lambda d: d["hierarchies"][0]["groups"].update({"Asia": ["PHL", "IDN", "XX"]}),
         "not declared values"),
        (lambda d: d["hierarchies"][1]["map"].update({"30+": "Elder"}), "map targets"),
        (lambda d: d["hierarchies"][0].update({"column": "nope"}), "not a declared column"),
        (lambda d: d["hierarchies"][0].update({"column": "labour"}), "set column"),
        (lambda d: d["hierarchies"][0].update({"map": {"UKR": "Europe"}}), "exactly one of"),
        (lambda d: d["hierarchies"][0].update({"parents": "x"}), "unknown key"),
        (lambda d: d["hierarchies"][0]["groups"].update({"Africa": ["UKR"]}), "two parents"),
        (lambda d: d["hierarchies"].append(dict(d["hierarchies"][1])), "same name"),
        (lambda d: d["constraints"][0]["forbid"].update({"majority": ["Teen"]}),
         "not declared labels"),
        (lambda d: d["constraints"][1]["forbid"].update({"age": ["[0, 17)"]}),
         "not declared labels"),
        (lambda d: d["constraints"].append({"name": "all", "forbid": {"majority": ["Adult", "Minor"]}}),
         "forbids every possible record"),
        (lambda d: d["constraints"].append({"name": "x", "forbid": {}}), "non-empty table"),
        (lambda d: d["constraints"].append({"name": "x", "forbid": {"caseId": ["1"]}}),
         "not a declared column"),
        (lambda d: d.update({"constraints": {"name": "x"}}), "array of tables"),
    ],
)
def test_bad_structure_is_a_schema_error_naming_the_table(change, fragment):
    data = copy.deepcopy(BASE)
    change(data)
    with pytest.raises(SchemaError) as exc:
        _cfg(data)
    assert fragment in str(exc.value)


def test_a_dp_bins_column_cannot_take_part_in_a_constraint():
    data = copy.deepcopy(BASE)
    data["columns"][4] = {"name": "age", "kind": "numeric", "bins": "dp-quantiles", "count": 2,
                          "range": [0, 120], "resolution": 1}
    with pytest.raises(SchemaError, match="DP bins"):
        _cfg(data)
