"""Schema-versioned JSON evaluation report.

Why strict JSON: the report outlives the code that wrote it; ``schema_version`` says how to
read it, numpy scalars become plain numbers, and NaN/inf (not JSON) become ``null`` rather than
producing a file that some readers reject.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

SUPPORTED_SCHEMA_VERSIONS = (1,)


def to_jsonable(obj: object) -> object:
    """Plain-Python copy of ``obj``: numpy scalars/arrays unwrapped, non-finite floats → None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


#: Marker in a release warning that the bundle must not be published (seeded noise).
NOT_FOR_RELEASE = "NOT FOR RELEASE"


def normalise_release(report: dict) -> dict:
    """Check and tag the ``release`` section the release pipeline merges into the report.

    The pipeline adds ``release_id`` and ``release = {sizes, protection, warnings}``. Why
    check here: both writers read it, and a malformed section must fail loudly rather than be
    half-rendered. Returns a new dict (the input is not modified) with the same schema
    version: ``release.visibility`` is private (sizes include the exact number of real
    records), ``release.protection.visibility`` public (suppression was applied to the
    synthetic records, which are released), and ``release.not_for_release`` is true when a
    warning says so (e.g. noise from a seeded generator).
    """
    if "release_id" in report and not isinstance(report["release_id"], str):
        raise ValueError("report 'release_id' must be a string")
    rel = report.get("release")
    if rel is None:
        return report
    if not isinstance(rel, dict):
        raise ValueError("report 'release' must be an object")
    warnings = rel.get("warnings", [])
    if not isinstance(warnings, (list, tuple)) or not all(isinstance(w, str) for w in warnings):
        raise ValueError("report 'release.warnings' must be a list of strings")
    for key in ("sizes", "protection"):
        if key in rel and rel[key] is not None and not isinstance(rel[key], dict):
            raise ValueError(f"report 'release.{key}' must be an object")
    tagged = {**rel, "visibility": "private", "warnings": list(warnings),
              "not_for_release": any(NOT_FOR_RELEASE in w.upper() for w in warnings)}
    if isinstance(rel.get("protection"), dict):
        tagged["protection"] = {**rel["protection"], "visibility": "public"}
    return {**report, "release": tagged}


def write_json_report(report: dict, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` (from :func:`ptsynth.evaluate.evaluate`) atomically as UTF-8 JSON.

    A ``release`` section merged in by the release pipeline is checked and tagged with
    :func:`normalise_release`.
    """
    version = report.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ValueError(f"unsupported report schema_version: {version!r}")
    report = normalise_release(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(report), indent=2, ensure_ascii=False, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json_report(path: str | os.PathLike[str]) -> dict:
    """Load a report written by :func:`write_json_report`, checking its schema version."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise ValueError(f"unsupported report schema_version: {data.get('schema_version')!r}")
    return data
