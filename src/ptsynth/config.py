"""The release configuration (TOML): dataset, privacy budget, release options, evaluation, schema.

Why one loader: every knob that affects privacy is validated here, once, before any record is
read, with messages naming the config file, the table/column and the rule. Unknown keys are
errors (a typo such as ``epsilion`` must not silently fall back to a default).

Layout::

    [dataset]     name, subject_id?, ledger? (relative to this file; the file holds the lifetime
                  budget, see `ptsynth budget init`), lifetime_epsilon? + lifetime_delta?
                  (optional: checked against the ledger file), extra_columns = "error"|"ignore",
                  missing_values = [""], domains_confirmed = true
    [dataset.source]  url = "postgresql://user@host/db" | "sqlite:///cases.db", and table = "…"
                  or query = "SELECT …" (read-only): the records' database, read when no
                  input is given on the command line (a password in the URL is refused:
                  libpq reads it from PGPASSWORD, ~/.pgpass or a service file)
    [privacy]     epsilon, delta
    [release]     reporting_length = 3, k = 10, synthesizer = "pgm" (default; graphical model) | "aggregate" (SDS-style), rows?,
                  dp_bins_share = 0.05 (share of the budget spent on DP bin edges, only when a
                  numeric column has bins = "dp-quantiles"; split equally over those columns)
    [release.<synthesizer>]  that synthesizer's options (:mod:`ptsynth.synth.registry`), each
                  validated against its options dataclass: an unknown key or a broken rule
                  is an error naming the key
    [evaluation]  target?, holdout_fraction = 0.0 (each person is kept out of every measurement with
                  this probability, independently: the private evaluation's unseen records)
    [showcase]    optional, the public showcase page (:mod:`ptsynth.showcase`): title?, time?,
                  geography? (column names), geography_codes? ("iso3166_alpha3" |
                  "iso3166_alpha2" | "us_state"), demographics? (columns: age band, then sex),
                  exploitation? (columns), [[showcase.pages]] title + columns; detected from
                  the columns' names, kinds and labels where absent
    [[columns]]   see :mod:`ptsynth.schema`
    [[hierarchies]], [[constraints]]   public structure: see :mod:`ptsynth.structure`
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ptsynth.errors import ConfigError
from ptsynth.schema import Schema
from ptsynth.synth import registry
from ptsynth.synth.options import options_dict

_TOP_KEYS = frozenset({"dataset", "privacy", "release", "evaluation", "showcase", "columns",
                       "hierarchies", "constraints"})
_DATASET_KEYS = frozenset(
    {"name", "subject_id", "ledger", "lifetime_epsilon", "lifetime_delta", "extra_columns",
     "missing_values", "domains_confirmed", "description", "source", "backend"}
)
_BACKEND_KEYS = frozenset({"name", "master", "partitions", "conf"})
#: Where records are read and counted: in this process (numpy) or on a Spark cluster.
BACKENDS = ("local", "spark")


@dataclass(frozen=True)
class BackendConfig:
    """``[dataset.backend]``: ``name = "local"`` (default) or ``"spark"`` (``ptsynth[spark]``),
    with Spark's ``master`` (``spark.master``; default ``local[*]``), the ``partitions`` of the
    encoded records and further Spark settings in ``[dataset.backend.conf]``."""

    name: str = "local"
    master: str | None = "local[*]"
    partitions: int | None = None
    conf: Mapping[str, str] = field(default_factory=dict)


_SOURCE_KEYS = frozenset({"url", "table", "query"})
_PRIVACY_KEYS = frozenset({"epsilon", "delta"})
_RELEASE_KEYS = frozenset({"reporting_length", "k", "synthesizer", "rows", "dp_bins_share",
                           *registry.names()})
#: Default share of the release budget spent on DP bin edges (when a column asks for them).
DEFAULT_DP_BINS_SHARE = 0.05
_EVAL_KEYS = frozenset({"target", "holdout_fraction"})
_SHOWCASE_KEYS = frozenset(
    {"title", "time", "geography", "geography_codes", "demographics", "exploitation", "pages"}
)
#: Code systems a showcase map knows (``[showcase] geography_codes``).
GEOGRAPHY_CODES = ("iso3166_alpha3", "iso3166_alpha2", "us_state")


@dataclass(frozen=True)
class SourceConfig:
    """``[dataset.source]``: where the records live when they are not a file (a database).

    ``url`` names the database (never a password); exactly one of ``table`` and ``query``.
    A relative ``sqlite:///`` path is resolved against the config file's folder.
    """

    url: str
    table: str | None = None
    query: str | None = None
    base: Path | None = None

    def record_source(self) -> Any:
        """The :class:`~ptsynth.ingest.RecordSource` to read (PostgreSQL or SQLite)."""
        from ptsynth.ingest.postgres import database_source

        return database_source(self.url, table=self.table, query=self.query, base=self.base)


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    subject_id: str | None = None
    #: Lifetime ledger of the dataset (absolute, resolved relative to the config file), or None.
    ledger: Path | None = None
    lifetime_epsilon: float | None = None
    lifetime_delta: float | None = None
    extra_columns: str = "error"
    missing_values: tuple[str, ...] = ("",)
    #: False when the domains were proposed from the data (``ptsynth init``) and not yet
    #: confirmed as public: a release must refuse or loudly flag such a config.
    domains_confirmed: bool = True
    description: str = ""
    backend: BackendConfig = field(default_factory=BackendConfig)
    #: ``[dataset.source]``: the records' database, or None (the input is given when run).
    source: SourceConfig | None = None


@dataclass(frozen=True)
class PrivacyConfig:
    epsilon: float
    delta: float


@dataclass(frozen=True)
class ReleaseOptions:
    reporting_length: int = 3
    k: int = 10
    synthesizer: str = registry.DEFAULT
    rows: int | None = None
    #: Share of the release budget spent on DP bin edges (``bins = "dp-quantiles"`` columns).
    dp_bins_share: float = DEFAULT_DP_BINS_SHARE
    #: Options of every registered synthesizer (``[release.<name>]``, defaults where absent).
    synthesizer_options: Mapping[str, Any] = field(
        default_factory=lambda: {n: registry.parse_options(n, None) for n in registry.names()}
    )

    @property
    def options(self) -> Any:
        """The effective options of the chosen synthesizer."""
        return self.synthesizer_options[self.synthesizer]

    def create_synthesizer(self, *, structural_zeros: tuple = ()) -> registry.Synthesizer:
        """The chosen synthesizer, configured (the registry's factory); ``structural_zeros``:
        the schema's impossible combinations, which it treats as known zeros."""
        return registry.get(self.synthesizer).create(
            self.options, reporting_length=self.reporting_length, k=self.k,
            structural_zeros=tuple(structural_zeros),
        )


@dataclass(frozen=True)
class EvaluationConfig:
    target: str | None = None
    holdout_fraction: float = 0.0


@dataclass(frozen=True)
class ShowcasePage:
    title: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ShowcaseConfig:
    """The optional ``[showcase]`` section: which columns the breakdown pages use.

    ``None`` / empty means "detect from the columns' names, kinds and labels"
    (:mod:`ptsynth.showcase.layout`).
    """

    title: str | None = None
    time: str | None = None
    geography: tuple[str, ...] = ()
    geography_codes: str | None = None
    demographics: tuple[str, ...] = ()
    exploitation: tuple[str, ...] = ()
    pages: tuple[ShowcasePage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("title", "time", "geography_codes"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("geography", "demographics", "exploitation"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.pages:
            out["pages"] = [{"title": p.title, "columns": list(p.columns)} for p in self.pages]
        return out


def _showcase(data: Mapping[str, Any], ctx: _Ctx) -> ShowcaseConfig:
    tab = _table(data, "showcase", _SHOWCASE_KEYS, ctx, required=False)
    w = "[showcase]"

    def names(key: str) -> tuple[str, ...]:
        v = tab.get(key, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise ctx(w, f"{key} must be a column name or a list of column names")
        return tuple(v)

    for key in ("title", "time"):
        if key in tab and (not isinstance(tab[key], str) or not tab[key]):
            raise ctx(w, f"{key} must be a non-empty string")
    codes = tab.get("geography_codes")
    if codes is not None and codes not in GEOGRAPHY_CODES:
        raise ctx(w, f"geography_codes must be one of {', '.join(GEOGRAPHY_CODES)}")
    pages = []
    raw_pages = tab.get("pages", [])
    if not isinstance(raw_pages, list):
        raise ctx(w, "pages must be a list of tables ([[showcase.pages]])")
    for i, page in enumerate(raw_pages):
        where = f"[[showcase.pages]] #{i + 1}"
        if not isinstance(page, Mapping) or set(page) - {"title", "columns"}:
            raise ctx(where, "must be a table with title and columns")
        title, cols = page.get("title"), page.get("columns")
        if not isinstance(title, str) or not title:
            raise ctx(where, "title must be a non-empty string")
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            raise ctx(where, "columns must be a non-empty list of column names")
        pages.append(ShowcasePage(title, tuple(cols)))
    return ShowcaseConfig(
        title=tab.get("title"), time=tab.get("time"), geography=names("geography"),
        geography_codes=codes, demographics=names("demographics"),
        exploitation=names("exploitation"), pages=tuple(pages),
    )


class _Ctx:
    """Builds ConfigErrors that name the file and the table (one place for wording)."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def __call__(self, where: str, rule: str) -> ConfigError:
        return ConfigError(rule, file=self.path, key=where)


def _table(data: Mapping[str, Any], key: str, allowed: frozenset[str], ctx: _Ctx, *, required: bool) -> dict[str, Any]:
    if key not in data:
        if required:
            raise ctx(f"[{key}]", "table is missing")
        return {}
    tab = data[key]
    if not isinstance(tab, Mapping):
        raise ctx(f"[{key}]", "must be a table")
    unknown = sorted(set(tab) - allowed)
    if unknown:
        raise ctx(f"[{key}]", f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    return dict(tab)


def _number(tab: Mapping[str, Any], key: str, where: str, ctx: _Ctx, *, lo: float, hi: float,
            lo_open: bool, hi_open: bool, default: float | None = None, required: bool = False) -> float | None:
    if key not in tab:
        if required:
            raise ctx(where, f"{key} is required")
        return default
    v = tab[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ctx(where, f"{key} must be a finite number")
    v = float(v)
    if (v < lo or (lo_open and v == lo)) or (v > hi or (hi_open and v == hi)):
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ctx(where, f"{key} must lie in {lb}{lo:g}, {hi:g}{rb}")
    return v


def _int(tab: Mapping[str, Any], key: str, where: str, ctx: _Ctx, *, lo: int, default: int | None) -> int | None:
    if key not in tab:
        return default
    v = tab[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ctx(where, f"{key} must be an integer ≥ {lo}")
    return v


def _backend(tab: Any, ctx: _Ctx) -> BackendConfig:
    w = "[dataset.backend]"
    if not isinstance(tab, Mapping):
        raise ctx(w, "must be a table")
    unknown = sorted(set(tab) - _BACKEND_KEYS)
    if unknown:
        raise ctx(w, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_BACKEND_KEYS))})")
    name = tab.get("name", "local")
    if name not in BACKENDS:
        raise ctx(w, f"name must be one of {', '.join(BACKENDS)}")
    master = tab.get("master", "local[*]")
    if not isinstance(master, str) or not master:
        raise ctx(w, "master must be a Spark master URL (e.g. local[*], spark://host:7077, yarn)")
    partitions = _int(tab, "partitions", w, ctx, lo=1, default=None)
    conf = tab.get("conf", {})
    if not isinstance(conf, Mapping) or not all(
        isinstance(v, (str, int, float, bool)) for v in conf.values()
    ):
        raise ctx(w, "conf must be a table of Spark settings (strings, numbers or booleans)")
    conf = {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in conf.items()}
    return BackendConfig(name=name, master=master, partitions=partitions, conf=conf)


def _source(ds: Mapping[str, Any], p: Path | None, ctx: _Ctx) -> SourceConfig | None:
    """``[dataset.source]``, checked; the URL is never echoed (it could hold a password)."""
    if "source" not in ds:
        return None
    w = "[dataset.source]"
    src = ds["source"]
    if not isinstance(src, Mapping):
        raise ctx(w, "must be a table (url, and table or query)")
    unknown = sorted(set(src) - _SOURCE_KEYS)
    if unknown:
        raise ctx(w, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_SOURCE_KEYS))})")
    url = src.get("url")
    if not isinstance(url, str) or not url:
        raise ctx(w, "url is required (postgresql://user@host/database or sqlite:///path)")
    for key in ("table", "query"):
        if key in src and (not isinstance(src[key], str) or not src[key].strip()):
            raise ctx(w, f"{key} must be a non-empty string")
    out = SourceConfig(url=url, table=src.get("table"), query=src.get("query"),
                       base=p.parent if p is not None else None)
    try:
        out.record_source()  # refuses a password in the URL, a bad table name, both or neither
    except ConfigError as exc:
        raise ctx(w, f"{exc.key}: {exc.rule}" if exc.key else exc.rule) from None
    return out


@dataclass(frozen=True)
class ReleaseConfig:
    """A validated release configuration. Build with :meth:`load` or :meth:`from_dict`."""

    dataset: DatasetConfig
    privacy: PrivacyConfig
    release: ReleaseOptions
    evaluation: EvaluationConfig
    schema: Schema
    path: Path | None = None
    #: Things the steward should know (e.g. a reporting length capped at the column count).
    warnings: tuple[str, ...] = ()
    showcase: ShowcaseConfig = field(default_factory=ShowcaseConfig)

    @property
    def domains_confirmed(self) -> bool:
        return self.dataset.domains_confirmed

    @classmethod
    def load(cls, path: str | Path) -> ReleaseConfig:
        """Read and validate a TOML config. Raises :class:`ConfigError` / ``SchemaError``."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot be read ({exc.strerror or type(exc).__name__})",
                              file=str(path)) from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError("is not UTF-8 text", file=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML ({exc})", file=str(path)) from None
        return cls.from_dict(data, path=path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str | Path | None = None) -> ReleaseConfig:
        """Validate an already parsed config (``path`` resolves a relative ledger and names errors)."""
        p = Path(path) if path is not None else None
        ctx = _Ctx(str(p) if p else None)
        if not isinstance(data, Mapping):
            raise ctx("config", "must be a table")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ctx("top level", f"unknown table(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_TOP_KEYS))})")

        ds = _table(data, "dataset", _DATASET_KEYS, ctx, required=True)
        w = "[dataset]"
        name = ds.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ctx(w, "name must be a non-empty string")
        subject = ds.get("subject_id")
        if subject is not None and (not isinstance(subject, str) or not subject):
            raise ctx(w, "subject_id must be a column name")
        ledger = ds.get("ledger")
        ledger_path: Path | None = None
        if ledger is not None:
            if not isinstance(ledger, str) or not ledger:
                raise ctx(w, "ledger must be a path")
            ledger_path = Path(ledger)
            if not ledger_path.is_absolute() and p is not None:
                ledger_path = (p.parent / ledger_path).resolve()
        life_eps = _number(ds, "lifetime_epsilon", w, ctx, lo=0, hi=math.inf, lo_open=True, hi_open=True)
        life_delta = _number(ds, "lifetime_delta", w, ctx, lo=0, hi=1, lo_open=False, hi_open=True)
        if (life_eps is None) != (life_delta is None):
            raise ctx(w, "give both lifetime_epsilon and lifetime_delta or neither (the ledger "
                         "file holds the lifetime budget; given here they are only checked "
                         "against it)")
        if ledger_path is None and (life_eps is not None or life_delta is not None):
            raise ctx(w, "lifetime_epsilon/lifetime_delta need a ledger path: without one the "
                         "lifetime budget would silently not be enforced")
        extra = ds.get("extra_columns", "error")
        if extra not in ("error", "ignore"):
            raise ctx(w, "extra_columns must be 'error' or 'ignore'")
        mv = ds.get("missing_values", [""])
        if not isinstance(mv, list) or not all(isinstance(v, str) for v in mv):
            raise ctx(w, "missing_values must be a list of strings")
        confirmed = ds.get("domains_confirmed", True)
        if not isinstance(confirmed, bool):
            raise ctx(w, "domains_confirmed must be true or false")
        desc = ds.get("description", "")
        if not isinstance(desc, str):
            raise ctx(w, "description must be a string")
        dataset = DatasetConfig(
            name=name, subject_id=subject, ledger=ledger_path, lifetime_epsilon=life_eps,
            lifetime_delta=life_delta, extra_columns=extra,
            missing_values=tuple(dict.fromkeys(v.strip() for v in mv)) or ("",),
            domains_confirmed=confirmed, description=desc,
            backend=_backend(ds.get("backend", {}), ctx),
            source=_source(ds, p, ctx),
        )

        pr = _table(data, "privacy", _PRIVACY_KEYS, ctx, required=True)
        eps = _number(pr, "epsilon", "[privacy]", ctx, lo=0, hi=math.inf, lo_open=True, hi_open=True, required=True)
        delta = _number(pr, "delta", "[privacy]", ctx, lo=0, hi=1, lo_open=True, hi_open=True, required=True)
        assert eps is not None and delta is not None
        if life_eps is not None and eps > life_eps:
            raise ctx("[privacy]", "epsilon exceeds the dataset's lifetime_epsilon")
        if life_delta is not None and delta > life_delta:
            raise ctx("[privacy]", "delta exceeds the dataset's lifetime_delta")
        privacy = PrivacyConfig(epsilon=eps, delta=delta)

        rel = _table(data, "release", _RELEASE_KEYS, ctx, required=False)
        w = "[release]"
        synth = rel.get("synthesizer", registry.DEFAULT)
        if synth not in registry.names():
            raise ctx(w, f"synthesizer must be one of {', '.join(registry.names())}")
        synth_options = {}
        for name in registry.names():
            table = rel.get(name, {})
            if not isinstance(table, Mapping):
                raise ctx(f"[release.{name}]", "must be a table")
            try:
                synth_options[name] = registry.parse_options(name, table)
            except ConfigError as exc:
                raise ctx(exc.key or f"[release.{name}]", exc.rule) from None
        release = ReleaseOptions(
            reporting_length=_int(rel, "reporting_length", w, ctx, lo=1, default=3) or 3,
            k=_int(rel, "k", w, ctx, lo=1, default=10) or 10,
            synthesizer=synth,
            rows=_int(rel, "rows", w, ctx, lo=1, default=None),
            dp_bins_share=float(_number(rel, "dp_bins_share", w, ctx, lo=0, hi=1, lo_open=True,
                                        hi_open=True, default=DEFAULT_DP_BINS_SHARE) or 0.0),
            synthesizer_options=synth_options,
        )

        ev = _table(data, "evaluation", _EVAL_KEYS, ctx, required=False)
        target = ev.get("target")
        if target is not None and (not isinstance(target, str) or not target):
            raise ctx("[evaluation]", "target must be a column name")
        hf = _number(ev, "holdout_fraction", "[evaluation]", ctx, lo=0, hi=1, lo_open=False,
                     hi_open=True, default=0.0)
        evaluation = EvaluationConfig(target=target, holdout_fraction=float(hf if hf is not None else 0.0))

        schema = Schema.from_dict(
            data.get("columns", []), subject_id=subject, extra_columns=extra,
            missing_values=dataset.missing_values, source=str(p) if p else None,
            hierarchies=data.get("hierarchies", []), constraints=data.get("constraints", []),
        )
        if target is not None and (
            target not in schema.names or schema.column(target).kind in ("subject_id", "set")
        ):
            raise ctx("[evaluation]", "target must name a declared single-valued column")
        showcase = _showcase(data, ctx)
        released = {c.name for c in schema.data_columns}
        for col in (showcase.time, *showcase.geography, *showcase.demographics,
                    *showcase.exploitation, *(c for pg in showcase.pages for c in pg.columns)):
            if col is not None and col not in released:
                raise ctx("[showcase]", f"{col!r} is not a released column")
        warnings = list(schema.warnings)
        n_columns = len(schema.encoded_domains())
        if release.reporting_length > n_columns:
            warnings.append(f"[release] reporting_length {release.reporting_length} exceeds the "
                            f"{n_columns} encoded columns: capped at {n_columns}")
            release = replace(release, reporting_length=n_columns)
        return cls(dataset=dataset, privacy=privacy, release=release, evaluation=evaluation,
                   schema=schema, path=p, warnings=tuple(warnings), showcase=showcase)

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready dict (``tomli_w.dumps``); ``None`` fields are omitted, paths as strings."""
        ds: dict[str, Any] = {"name": self.dataset.name}
        if self.dataset.description:
            ds["description"] = self.dataset.description
        if self.dataset.subject_id:
            ds["subject_id"] = self.dataset.subject_id
        if self.dataset.ledger is not None:
            ds["ledger"] = str(self.dataset.ledger)
        for key in ("lifetime_epsilon", "lifetime_delta"):
            v = getattr(self.dataset, key)
            if v is not None:
                ds[key] = v
        ds["extra_columns"] = self.dataset.extra_columns
        ds["missing_values"] = list(self.dataset.missing_values)
        ds["domains_confirmed"] = self.dataset.domains_confirmed
        if self.dataset.backend != BackendConfig():
            b = self.dataset.backend
            ds["backend"] = {"name": b.name, **({"master": b.master} if b.master else {}),
                             **({"partitions": b.partitions} if b.partitions else {}),
                             **({"conf": dict(b.conf)} if b.conf else {})}
        if self.dataset.source is not None:
            src = self.dataset.source
            ds["source"] = {"url": src.url, **{k: v for k, v in (("table", src.table),
                                                                ("query", src.query)) if v is not None}}
        rel: dict[str, Any] = {
            "reporting_length": self.release.reporting_length,
            "k": self.release.k,
            "synthesizer": self.release.synthesizer,
        }
        if self.release.rows is not None:
            rel["rows"] = self.release.rows
        if self.schema.dp_bin_columns or self.release.dp_bins_share != DEFAULT_DP_BINS_SHARE:
            rel["dp_bins_share"] = self.release.dp_bins_share
        # the chosen synthesizer's effective options (TOML has no null: unset ones are omitted)
        effective = options_dict(self.release.options)
        rel[self.release.synthesizer] = {k: v for k, v in effective.items() if v is not None}
        ev: dict[str, Any] = {"holdout_fraction": self.evaluation.holdout_fraction}
        if self.evaluation.target is not None:
            ev["target"] = self.evaluation.target
        cols = self.schema.to_dict()
        out = {
            "dataset": ds,
            "privacy": {"epsilon": self.privacy.epsilon, "delta": self.privacy.delta},
            "release": rel,
            "evaluation": ev,
            "columns": cols,
            **self.schema.structure_dict(),
        }
        showcase = self.showcase.to_dict()
        if showcase:
            out["showcase"] = showcase
        return out
