"""A fitted synthesizer as a versioned JSON document: save, load, publish.

Why JSON and not pickle: a model file travels (a bundle publishes the fitted graphical model for
count queries; a researcher saves a synthesizer and loads it elsewhere), and loading a pickle
executes code. A document here holds only public values: the domains, the effective options and
the fitted state, which is post-processing of DP measurements (noisy marginals, the model
estimated from them, merged rare values). It never holds a count read from the records without
noise, so it may be published with the bundle.

Format (``format`` = ``"ptsynth-synthesizer"``, ``version`` 1)::

    {"format", "version", "name", "options", "reporting_length", "k",
     "domains": [{"name", "labels", "source", "kind", "allows_missing",
                  "quasi_identifier", "sensitive"}, ...],
     "state": {...},            # the synthesizer's own fitted state (arrays encoded below)
     "sha256": "..."}           # of the canonical JSON of everything else

Arrays are ``{"array": dtype, "shape": [...], "data": base64 of the little-endian bytes}``
with dtype one of int8..int64, uint8..uint64, float64, bool; anything else is refused. The
checksum detects accidental edits and truncation (a forger can recompute it: publish the
bundle's manifest, which hashes the file, to anchor it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ptsynth.errors import BundleError
from ptsynth.table import ColumnDomain

FORMAT = "ptsynth-synthesizer"
VERSION = 1
_DTYPES = frozenset(
    ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float64", "bool"]
)
_MAX_ARRAY_BYTES = 1 << 30


def encode_array(a: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(a)
    if arr.dtype.name not in _DTYPES:
        raise TypeError(f"cannot store arrays of dtype {arr.dtype}")
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return {"array": arr.dtype.name, "shape": list(arr.shape),
            "data": base64.b64encode(le.tobytes()).decode("ascii")}


def decode_array(doc: Any, where: str) -> np.ndarray:
    if not isinstance(doc, dict) or set(doc) != {"array", "shape", "data"}:
        raise BundleError("is not an encoded array", key=where)
    dtype, shape, data = doc["array"], doc["shape"], doc["data"]
    if dtype not in _DTYPES or not isinstance(shape, list) or not all(
        isinstance(s, int) and s >= 0 for s in shape
    ) or not isinstance(data, str):
        raise BundleError("has an unknown dtype or a bad shape", key=where)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    itemsize = np.dtype(dtype).itemsize
    if n * itemsize > _MAX_ARRAY_BYTES or len(data) > 2 * _MAX_ARRAY_BYTES:
        raise BundleError("is larger than a model array may be", key=where)
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise BundleError("holds invalid base64", key=where) from None
    if len(raw) != n * itemsize:
        raise BundleError("data length does not match its shape", key=where)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)


def domains_to_doc(domains: tuple[ColumnDomain, ...]) -> list[dict[str, Any]]:
    return [
        {"name": d.name, "labels": list(d.labels), "source": d.source, "kind": d.kind,
         "allows_missing": d.allows_missing, "quasi_identifier": d.quasi_identifier,
         "sensitive": d.sensitive}
        for d in domains
    ]


def domains_from_doc(doc: Any) -> tuple[ColumnDomain, ...]:
    if not isinstance(doc, list):
        raise BundleError("must be a list", key="domains")
    try:
        return tuple(
            ColumnDomain(name=str(d["name"]), labels=tuple(str(x) for x in d["labels"]),
                         source=str(d["source"]), kind=str(d["kind"]),
                         allows_missing=bool(d["allows_missing"]),
                         quasi_identifier=bool(d["quasi_identifier"]),
                         sensitive=bool(d["sensitive"]))
            for d in doc
        )
    except (KeyError, TypeError, ValueError):
        raise BundleError("an entry is not a column domain", key="domains") from None


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def to_document(synth: Any) -> dict[str, Any]:
    """The document of a fitted registered synthesizer (see the module docstring)."""
    from ptsynth.synth.options import options_dict

    body = {
        "format": FORMAT,
        "version": VERSION,
        "name": synth.name,
        "options": options_dict(synth.options),
        "reporting_length": int(getattr(synth, "reporting_length", 0) or 0),
        "k": int(getattr(synth, "k", 0) or 0),
        "domains": domains_to_doc(tuple(synth.fitted_domains)),
        "state": synth.state_document(),
    }
    return {**body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()}


def from_document(doc: Any, *, source: str = "model") -> Any:
    """A fitted synthesizer from :func:`to_document`'s output; refuses foreign or altered ones."""
    from ptsynth.errors import PtsynthError
    from ptsynth.synth import registry
    from ptsynth.synth.options import build_options

    verified_body(doc, fmt=FORMAT, version=VERSION, what="synthesizer document", source=source)
    try:
        cls = registry.get(str(doc.get("name")))
        options = build_options(cls.Options, doc.get("options"), where="options")
        domains = domains_from_doc(doc.get("domains"))
        return cls.from_state_document(
            options, domains, doc.get("state"),
            reporting_length=int(doc.get("reporting_length") or 0), k=int(doc.get("k") or 0),
        )
    except BundleError as exc:
        raise BundleError(exc.rule, file=source, key=exc.key) from None
    except PtsynthError as exc:
        raise BundleError(f"invalid ({exc.rule})", file=source, key=exc.key) from None
    except (KeyError, TypeError, ValueError, IndexError):
        raise BundleError("fitted state is incomplete or inconsistent", file=source) from None


def save(synth: Any, path: str | Path) -> Path:
    """Write a fitted synthesizer's document to ``path`` (JSON)."""
    path = Path(path)
    path.write_text(json.dumps(to_document(synth), separators=(",", ":")) + "\n", encoding="utf-8")
    return path


def load(path: str | Path) -> Any:
    """Read a document written by :func:`save` (never executes code from the file)."""
    return from_document(read_json(path, what="model"), source=str(path))


def read_json(path: str | Path, *, what: str) -> Any:
    """A JSON file's contents; a :class:`BundleError` naming the file (never its contents)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"no such {what} file", file=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError("is not readable JSON", file=str(path)) from None


def verified_body(doc: Any, *, fmt: str, version: int, what: str, source: str) -> dict[str, Any]:
    """``doc`` without its ``sha256`` after checking its format, version and checksum: a file of
    another kind, a newer version, an edit or a truncation is a :class:`BundleError`."""
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise BundleError(f"is not a ptsynth {what}", file=source)
    if doc.get("version") != version:
        raise BundleError(f"unknown {what} version {doc.get('version')!r} (this ptsynth reads "
                          f"{version})", file=source)
    body = {k: v for k, v in doc.items() if k != "sha256"}
    try:
        digest = hashlib.sha256(_canonical(body)).hexdigest()
    except (TypeError, ValueError):
        raise BundleError("holds values JSON cannot represent", file=source) from None
    if doc.get("sha256") != digest:
        raise BundleError("checksum does not match its contents (altered or truncated)",
                          file=source)
    return body
