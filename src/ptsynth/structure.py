"""Public structure of a domain: hierarchies and structural zeros (impossible combinations).

Why a module of its own: some combinations of values cannot occur, and that is known before any
record is read. A country lies in one region; a registration date in the year of registration;
a minor cannot have an adult-only code; a standard's picklist maps codes to broader codes.
Declaring this in the schema is **public knowledge** (like a domain), so using it costs no
privacy budget. It serves three ends:

* every synthetic record and every released aggregate respects it (impossible combinations are
  never released or drawn), which a reader would otherwise take for a privacy leak or a bug;
* the synthesizers treat these cells as *known zeros* instead of estimating them from noisy
  counts (accuracy: the noise on impossible cells is discarded by construction);
* hierarchies are reusable generalisation levels (region above country) for k-anonymity and
  showcase views.

Config
------
``[[hierarchies]]`` maps a column's values onto a broader level::

    [[hierarchies]]
    column = "citizenship"          # a declared single-valued column (its values: the children)
    parent = "region"               # a declared column (→ structural zeros) or a level name
    groups = { Europe = ["UKR", "MDA"], Asia = ["PHL", "IDN"] }   # or map = { UKR = "Europe", … }

The map must be total (every value of ``column`` has one parent). When ``parent`` names a
declared single-valued column, every (child, parent) pair whose parent differs from the map is a
structural zero, and the parent's values must be declared values of that column. Otherwise the
hierarchy only records a generalisation level (no zeros).

``[[constraints]]`` forbids a combination outright::

    [[constraints]]
    name = "minors have no adult age band"
    forbid = { majorityStatus = ["Minor"], ageBroad = ["18--20", "21--23", "48+"] }

A record is impossible when *every* listed column holds one of its listed values (set columns:
holds one of the listed members). Labels are the column's public labels (numeric: bin labels
such as ``"[18, 25)"``; dates: period labels). A missing value never takes part in a structural
zero: suppression to missing (k-anonymity) and "absent" attributes can never create one.

Encoded form
------------
:class:`StructuralZero` is a *box* over encoded columns: the record is impossible when, for every
column of the box, its code is in the box's code set. The union of the boxes is the zero set.
Everything here is public: no function reads a count.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.errors import SchemaError

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.schema import ColumnSpec
    from ptsynth.table import ColumnDomain

#: Most boxes one constraint may expand to (set columns with several listed members multiply).
MAX_BOXES = 10_000
_HIERARCHY_KEYS = frozenset({"name", "column", "parent", "map", "groups", "description"})
_CONSTRAINT_KEYS = frozenset({"name", "forbid", "description"})


@dataclass(frozen=True)
class Hierarchy:
    """A public map from the values of ``column`` onto a broader level ``parent``.

    Attributes:
        column: the child column (declared, single-valued).
        parent: a declared column (then impossible pairs are structural zeros) or a level name.
        mapping: child value → parent value, in the child column's declared order.
        name: how errors and reports call it.
    """

    column: str
    parent: str
    mapping: Mapping[str, str]
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", f"{self.column} → {self.parent}")

    @property
    def parent_values(self) -> tuple[str, ...]:
        """Parent values in order of first appearance in the map."""
        return tuple(dict.fromkeys(self.mapping.values()))

    def parent_of(self, value: str) -> str:
        """The parent of one child value (``KeyError`` for a value outside the map)."""
        return self.mapping[value]

    def children(self, parent_value: str) -> tuple[str, ...]:
        """The child values under one parent value."""
        return tuple(c for c, p in self.mapping.items() if p == parent_value)

    def generalise(self, values: Iterable[str | None]) -> list[str | None]:
        """Child values replaced by their parent (missing stays missing)."""
        return [None if v is None or v == "" else self.mapping[v] for v in values]

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready ``[[hierarchies]]`` table (round-trips through :func:`parse_hierarchy`)."""
        out: dict[str, Any] = {"name": self.name, "column": self.column, "parent": self.parent,
                               "groups": {p: list(self.children(p)) for p in self.parent_values}}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Constraint:
    """A declared impossible combination: every listed column holds one of its listed labels."""

    name: str
    forbid: Mapping[str, tuple[str, ...]]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name,
                               "forbid": {c: list(v) for c, v in self.forbid.items()}}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class StructuralZero:
    """A box of impossible records over encoded columns.

    A record lies in the box when, for every ``i``, its code in ``columns[i]`` is one of
    ``codes[i]``. Codes never include a column's missing code.
    """

    columns: tuple[str, ...]
    codes: tuple[tuple[int, ...], ...]
    origin: str = ""

    def __post_init__(self) -> None:
        if len(self.columns) != len(self.codes) or not self.columns:
            raise ValueError("a structural zero needs one code set per column")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("a structural zero names a column twice")
        if any(not c for c in self.codes):
            raise ValueError("a structural zero needs a non-empty code set per column")

    def indices(self, names: Sequence[str]) -> tuple[int, ...]:
        """Positions of the box's columns among ``names`` (``KeyError`` if one is absent)."""
        index = {n: j for j, n in enumerate(names)}
        return tuple(index[c] for c in self.columns)

    def contains(self, codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Mask of the rows of ``codes`` (n, len(names)) that lie in the box."""
        hit = np.ones(codes.shape[0], dtype=bool)
        for j, allowed in zip(self.indices(names), self.codes, strict=True):
            hit &= np.isin(codes[:, j], np.asarray(allowed, dtype=np.int64))
        return hit

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "codes": [list(c) for c in self.codes],
                "origin": self.origin}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StructuralZero:
        return cls(tuple(str(c) for c in doc["columns"]),
                   tuple(tuple(int(x) for x in c) for c in doc["codes"]), str(doc.get("origin", "")))


def violations(zeros: Sequence[StructuralZero], codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Mask of the rows of ``codes`` that lie in any structural zero."""
    bad = np.zeros(codes.shape[0], dtype=bool)
    for z in zeros:
        bad |= z.contains(codes, names)
    return bad


def combinations_in_zeros(zeros: Sequence[StructuralZero], columns: np.ndarray, codes: np.ndarray,
                          names: Sequence[str]) -> np.ndarray:
    """Mask of the attribute combinations (rows of ``columns`` / ``codes``, shape (N, ℓ): the
    encoded column index and code of each present attribute) that contain a structural zero:
    every column of some box present with a code in its set. Such a combination is impossible,
    and so is every longer one containing it."""
    bad = np.zeros(columns.shape[0], dtype=bool)
    for z in zeros:
        hit = np.ones(columns.shape[0], dtype=bool)
        for j, allowed in zip(z.indices(names), z.codes, strict=True):
            hit &= ((columns == j) & np.isin(codes, np.asarray(allowed, dtype=np.int64))).any(axis=1)
        bad |= hit
    return bad


def zero_table(zeros: Sequence[StructuralZero], columns: Sequence[int], names: Sequence[str],
               sizes: Sequence[int]) -> np.ndarray | None:
    """Boolean table over the (sorted) encoded ``columns``: True where a structural zero whose
    columns all lie in ``columns`` forbids the cell; ``None`` when no zero applies."""
    pos = {j: a for a, j in enumerate(columns)}
    shape = tuple(int(sizes[j]) for j in columns)
    out: np.ndarray | None = None
    for z in zeros:
        idx = z.indices(names)
        if not set(idx) <= set(pos):
            continue
        cell = np.ones(shape, dtype=bool)
        for j, allowed in zip(idx, z.codes, strict=True):
            axis = np.zeros(shape[pos[j]], dtype=bool)
            axis[list(allowed)] = True
            view = [1] * len(shape)
            view[pos[j]] = shape[pos[j]]
            cell &= axis.reshape(view)
        out = cell if out is None else (out | cell)
    return out


def zero_cliques(zeros: Sequence[StructuralZero], names: Sequence[str]) -> list[tuple[int, ...]]:
    """The distinct (sorted) encoded column sets the zeros span: a graphical model needs one
    clique covering each, so the zero cells can be fixed in its potentials."""
    return sorted({tuple(sorted(z.indices(names))) for z in zeros})


# -- parsing and validation ----------------------------------------------------------------------
def _err(source: str | None, key: str) -> Any:
    def make(rule: str) -> SchemaError:
        return SchemaError(rule, file=source, key=key)
    return make


def _names(value: Any, what: str, err: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise err(f"{what} must be a non-empty list")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise err(f"{what} must hold strings")
        out.append(str(v).strip())
    if len(set(out)) != len(out):
        raise err(f"{what} holds the same entry twice")
    return tuple(out)


def parse_hierarchy(table: Any, *, source: str | None, position: int) -> Hierarchy:
    """One ``[[hierarchies]]`` table (shape only; :func:`check_structure` checks the columns)."""
    err = _err(source, f"[[hierarchies]] #{position + 1}")
    if not isinstance(table, Mapping):
        raise err("must be a table")
    unknown = sorted(set(table) - _HIERARCHY_KEYS)
    if unknown:
        raise err(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_HIERARCHY_KEYS))})")
    column, parent = table.get("column"), table.get("parent")
    for key, value in (("column", column), ("parent", parent)):
        if not isinstance(value, str) or not value.strip():
            raise err(f"{key} must be a non-empty string")
    assert isinstance(column, str) and isinstance(parent, str)
    if column == parent:
        raise err("column and parent must differ")
    name = table.get("name", "")
    if not isinstance(name, str):
        raise err("name must be a string")
    if name:
        err = _err(source, f"[[hierarchies]] {name!r}")
    if ("map" in table) == ("groups" in table):
        raise err("give exactly one of map (child = parent) or groups (parent = [children])")
    mapping: dict[str, str] = {}
    if "map" in table:
        raw = table["map"]
        if not isinstance(raw, Mapping) or not raw or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise err("map must be a non-empty table of child value = parent value (strings)")
        mapping = {k.strip(): v.strip() for k, v in raw.items()}
    else:
        raw = table["groups"]
        if not isinstance(raw, Mapping) or not raw:
            raise err("groups must be a non-empty table of parent value = [child values]")
        for p, children in raw.items():
            for c in _names(children, f"groups.{p}", err):
                if c in mapping:
                    raise err("a child value is listed under two parents")
                mapping[c] = str(p).strip()
    desc = table.get("description", "")
    if not isinstance(desc, str):
        raise err("description must be a string")
    return Hierarchy(column=column.strip(), parent=parent.strip(), mapping=mapping,
                     name=name.strip(), description=desc)


def parse_constraint(table: Any, *, source: str | None, position: int) -> Constraint:
    """One ``[[constraints]]`` table (shape only; :func:`check_structure` checks the labels)."""
    err = _err(source, f"[[constraints]] #{position + 1}")
    if not isinstance(table, Mapping):
        raise err("must be a table")
    unknown = sorted(set(table) - _CONSTRAINT_KEYS)
    if unknown:
        raise err(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_CONSTRAINT_KEYS))})")
    name = table.get("name", f"constraint #{position + 1}")
    if not isinstance(name, str) or not name.strip():
        raise err("name must be a non-empty string")
    err = _err(source, f"[[constraints]] {name!r}")
    forbid = table.get("forbid")
    if not isinstance(forbid, Mapping) or not forbid:
        raise err("forbid must be a non-empty table of column = [labels]")
    parsed = {str(c).strip(): _names(v, f"forbid.{c}", err) for c, v in forbid.items()}
    desc = table.get("description", "")
    if not isinstance(desc, str):
        raise err("description must be a string")
    return Constraint(name=name.strip(), forbid=parsed, description=desc)


def _labelled(spec: ColumnSpec | None, where: str, role: str, err: Any, *, allow_set: bool) -> ColumnSpec:
    if spec is None:
        raise err(f"{role} {where!r} is not a declared column")
    if spec.kind == "subject_id":
        raise err(f"{role} {where!r} is the subject id, which is never released")
    if spec.kind == "set" and not allow_set:
        raise err(f"{role} {where!r} is a set column; hierarchies need single-valued columns")
    if spec.kind == "numeric" and not spec.bins:
        raise err(f"{role} {where!r} has DP bins, whose labels are only known after "
                  "measurement; declare public bins to use it here")
    return spec


def check_structure(
    hierarchies: Sequence[Hierarchy],
    constraints: Sequence[Constraint],
    specs: Mapping[str, ColumnSpec],
    *,
    source: str | None,
) -> tuple[StructuralZero, ...]:
    """Validate hierarchies and constraints against the declared columns; return the zeros."""
    zeros: list[StructuralZero] = []
    order: dict[str, tuple[int, ColumnDomain]] = {}
    for spec in specs.values():
        for d in spec.domains():
            order[d.name] = (len(order), d)
    names = [h.name for h in hierarchies]
    if len(set(names)) != len(names):
        raise SchemaError("two hierarchies have the same name", file=source, key="[[hierarchies]]")
    for h in hierarchies:
        err = _err(source, f"[[hierarchies]] {h.name!r}")
        child = _labelled(specs.get(h.column), h.column, "column", err, allow_set=False)
        labels = child.labels
        missing = [v for v in labels if v not in h.mapping]
        if missing:
            raise err(f"map must give a parent for every value of {h.column!r} "
                      f"({len(missing)} value(s) unmapped)")
        extra = [v for v in h.mapping if v not in labels]
        if extra:
            raise err(f"map lists {len(extra)} value(s) that are not declared values of {h.column!r}")
        parent = specs.get(h.parent)
        if parent is None:
            continue  # a generalisation level only
        parent = _labelled(parent, h.parent, "parent", err, allow_set=False)
        plabels = parent.labels
        if any(p not in plabels for p in h.mapping.values()):
            raise err(f"map targets must be declared values of the parent column {h.parent!r}")
        for p in plabels:
            kids = h.children(p)
            others = tuple(q for q in plabels if q != p)
            if kids and others:
                zeros.append(_box({h.column: kids, h.parent: others}, order,
                                  f"hierarchy {h.name!r}"))
    cnames = [c.name for c in constraints]
    if len(set(cnames)) != len(cnames):
        raise SchemaError("two constraints have the same name", file=source, key="[[constraints]]")
    for c in constraints:
        err = _err(source, f"[[constraints]] {c.name!r}")
        for col, values in c.forbid.items():
            spec = _labelled(specs.get(col), col, "column", err, allow_set=True)
            bad = [v for v in values if v not in spec.labels]
            if bad:
                raise err(f"forbid.{col} lists {len(bad)} label(s) that are not declared labels "
                          "of the column (numeric: bin labels such as \"[18, 25)\"; dates: "
                          "period labels)")
        if all(
            specs[col].kind != "set" and not specs[col].allows_missing
            and len(values) == len(specs[col].labels)
            for col, values in c.forbid.items()
        ):
            raise err("forbids every possible record (each listed column lists all its values "
                      "and none may be missing)")
        # set columns: "holds one of these members" is a union of single-member boxes
        singles = {col: v for col, v in c.forbid.items() if specs[col].kind != "set"}
        sets = [[(col, m) for m in v] for col, v in c.forbid.items() if specs[col].kind == "set"]
        n_boxes = int(np.prod([len(s) for s in sets], dtype=np.int64)) if sets else 1
        if n_boxes > MAX_BOXES:
            raise err(f"expands to more than {MAX_BOXES} combinations of set members")
        for combo in itertools.product(*sets):
            box: dict[str, tuple[str, ...]] = dict(singles)
            for col, member in combo:
                box[specs[col].member_name(member)] = ("1",)
            zeros.append(_box(box, order, f"constraint {c.name!r}"))
    return tuple(zeros)


def _box(labels: Mapping[str, tuple[str, ...]], order: Mapping[str, tuple[int, ColumnDomain]],
         origin: str) -> StructuralZero:
    """Labels per encoded column → a box of codes, columns in encoded order."""
    cols = sorted(labels, key=lambda n: order[n][0])
    codes = []
    for col in cols:
        dom = order[col][1]
        codes.append(tuple(sorted(dom.labels.index(v) for v in labels[col])))
    return StructuralZero(tuple(cols), tuple(codes), origin)
