"""Build the showcase page from a bundle's public files: the data the page needs, packed small.

What goes in (and nothing else): the manifest's public config and privacy facts, the ledger,
the synthetic records (column-wise codes), the published model (``model.json``) and, where they
were measured with noise, the released aggregates, plus the answer rule's constants computed by
:class:`ptsynth.query.QueryEngine` from those same files. ``report.*`` and the records are never
opened. The page computes every number with the rule of :func:`ptsynth.query.count`.

Packing: one binary container (a JSON header, then the arrays, each 8-byte aligned), gzipped
and base64-encoded into a ``<script type="application/octet-stream">``; the page inflates it
with the browser's ``DecompressionStream`` (no library, no network).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import struct
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ptsynth.query import MODEL_EXTRAPOLATION, Z95, QueryEngine
from ptsynth.release.bundle import Bundle
from ptsynth.showcase.layout import layout as detect_layout
from ptsynth.showcase.layout import us_states, world

#: Format version of the embedded data (the page refuses others).
DATA_VERSION = 1


class _Blobs:
    """Arrays appended to the binary container; the header refers to them by index."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.specs: list[dict[str, Any]] = []

    def add(self, array: np.ndarray, dtype: str) -> dict[str, int]:
        arr = np.ascontiguousarray(np.asarray(array).astype(dtype).ravel())
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        self.specs.append({"dtype": np.dtype(dtype).name, "length": int(arr.size)})
        self.parts.append(arr.tobytes())
        return {"blob": len(self.parts) - 1}

    def pack(self, header: dict[str, Any]) -> bytes:
        offset = 0
        for spec, part in zip(self.specs, self.parts, strict=True):
            spec["offset"] = offset
            offset += len(part) + (-len(part)) % 8
        header = {**header, "blobs": self.specs}
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")
        head += b" " * ((-len(head) - 8) % 8)
        out = [struct.pack("<II", len(head), DATA_VERSION), head]
        for part in self.parts:
            out.append(part)
            out.append(b"\0" * ((-len(part)) % 8))
        return b"".join(out)


def _codes_dtype(size: int) -> str:
    return "uint8" if size <= 256 else "uint16"


def _spent(ledger: Any) -> list[dict[str, Any]]:
    """Ledger entries grouped by step (the text before ':'), with their share of rho."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    total = sum(float(e.rho) for e in ledger.entries) or 1.0
    for e in ledger.entries:
        step = str(e.query).split(":")[0].strip()
        detail = str(e.query).split(":", 1)[1].strip() if ":" in str(e.query) else ""
        kind = re.sub(r"\s+(of|again)\b.*$", "", detail) if detail else step
        key = (step, kind)
        g = groups.setdefault(key, {"step": step, "what": kind, "mechanism": e.mechanism,
                                    "count": 0, "rho": 0.0})
        g["count"] += 1
        g["rho"] += float(e.rho)
    out = list(groups.values())
    for g in out:
        g["share"] = g["rho"] / total
    return out


def payload(bundle: Bundle) -> tuple[dict[str, Any], _Blobs]:
    """The page's data header and arrays, from the bundle's public files only."""
    engine = QueryEngine(bundle)
    blobs = _Blobs()
    manifest = bundle.manifest
    config = manifest.get("config", {})
    schema = bundle.schema
    released = schema.released()
    domains = schema.encoded_domains()
    enc = {d.name: j for j, d in enumerate(domains)}
    columns = []
    for c in released.data_columns:
        spec = schema.column(c.name)
        columns.append({
            "name": c.name,
            "kind": "set" if c.kind == "set" else ("ordinal" if c.kind == "ordinal" else
                                                   "categorical"),
            "input_kind": spec.kind,
            "labels": list(c.labels),
            "enc": ([enc[c.member_name(v)] for v in c.values] if c.kind == "set"
                    else [enc[c.name]]),
            "description": spec.description, "delimiter": c.delimiter if c.kind == "set" else "",
            "qi": spec.quasi_identifier, "sensitive": spec.sensitive,
        })
    table = bundle.synthetic_table
    synthetic = engine.synthetic
    header: dict[str, Any] = {
        "columns": columns,
        "domains": [{"name": d.name, "size": d.size, "missing": d.allows_missing} for d in domains],
        "synthetic": {
            "n": table.n_records, "scale": synthetic.scale, "dispersion": synthetic.dispersion,
            "codes": [blobs.add(table.codes[:, j], _codes_dtype(d.size))
                      for j, d in enumerate(domains)],
        },
        "rule": {"z": Z95, "k": bundle.k, "model_extrapolation": MODEL_EXTRAPOLATION,
                 "order": ["dp_aggregate", "model", "synthetic"]},
        "aggregates": None,
        "model": None,
    }
    if engine.aggregates is not None:
        agg = engine.aggregates.agg
        lengths = {}
        for ell in range(1, agg.reporting_length + 1):
            sigma = agg.sigma(ell)
            if sigma is None:
                continue
            lengths[str(ell)] = {
                "sigma": sigma, "threshold": engine.aggregates.threshold(ell),
                "bias": engine.aggregates.bias_bound(ell),
                "ids": blobs.add(agg.attribute_rows(ell), "uint32"),
                "counts": blobs.add(agg.counts[ell], "int32"),
            }
        header["aggregates"] = {"L": agg.reporting_length, "offsets": agg.offsets.tolist(),
                                "record_count": agg.record_count, "lengths": lengths}
    model = engine.model
    if model is not None:
        tree = model.tree
        header["model"] = {
            "total": model.total,
            "sizes": list(tree.sizes),
            "cliques": [list(c) for c in tree.cliques],
            "parent": list(tree.parent),
            "order": list(tree.order),
            "separators": [list(s) for s in tree.separators],
            "home": list(model.engine.home),
            "probs": [blobs.add(p, "float64") for p in model.engine.probs],
            "forward": [blobs.add(f, "int32") for f in model.forward],
            "expand": [blobs.add(e, "float64") for e in model.expand],
            "measurements": [{"clique": list(m.clique),
                              "sigma": np.asarray(m.sigma, dtype=np.float64).ravel().tolist()}
                             for m in model.measurements],
        }
    lay = detect_layout(schema, _showcase_config(config), config.get("dataset", {}).get("name", ""))
    header["layout"] = lay.to_dict()
    geo = {}
    systems = {g.codes for g in lay.geography}
    if systems & {"iso3166_alpha3", "iso3166_alpha2"}:
        geo["world"] = world()
    if "us_state" in systems:
        geo["us"] = us_states()
    header["geo"] = geo
    ledger = bundle.ledger
    header["about"] = {
        "dataset": config.get("dataset", {}).get("name", ""),
        "description": config.get("dataset", {}).get("description", ""),
        "release_id": bundle.release_id,
        "created": manifest.get("created", ""),
        "synthesizer": bundle.synthesizer,
        "epsilon": bundle.epsilon, "delta": bundle.delta,
        "rho": float(ledger.total.get("rho", 0.0)),
        "spent_rho": float(sum(float(e.rho) for e in ledger.entries)),
        "k": bundle.k, "reporting_length": bundle.reporting_length,
        "seeded": bundle.seeded,
        "randomness": manifest.get("randomness", {}).get("mode", ""),
        "privacy_unit": manifest.get("privacy", {}).get("privacy_unit", ""),
        "neighbouring": manifest.get("privacy", {}).get("neighbouring", ""),
        "warnings": list(manifest.get("warnings", [])),
        "aggregates_source": manifest.get("aggregates_source", ""),
        "spent": _spent(ledger),
        "n_entries": len(ledger.entries),
        "quasi_identifiers": list(schema.quasi_identifiers),
        "dp_records": engine.dp_records,
        "versions": {"ptsynth": manifest.get("versions", {}).get("ptsynth", "")},
    }
    return header, blobs


def _showcase_config(config: dict[str, Any]) -> Any:
    from ptsynth.config import ReleaseConfig

    try:
        return ReleaseConfig.from_dict(config).showcase
    except Exception:  # the bundle loaded it already; a failure here means no section
        return None


def _asset(name: str) -> str:
    return resources.files("ptsynth.showcase").joinpath("assets", name).read_text("utf-8")


def render(bundle: Bundle) -> str:
    """The whole page as one self-contained HTML string."""
    header, blobs = payload(bundle)
    packed = gzip.compress(blobs.pack(header), compresslevel=6, mtime=0)
    data = base64.b64encode(packed).decode("ascii")
    about = header["about"]
    title = header["layout"]["title"]
    seeded = (
        '<div class="test-banner" role="alert" data-test-bundle="1"><strong>TEST BUNDLE — NOT '
        "FOR RELEASE.</strong> Its noise came from a seeded generator, so anyone can reproduce "
        "it: the privacy guarantee does not hold. Do not publish these numbers.</div>"
        if about["seeded"] else ""
    )
    page = _asset("page.html")
    # data and code last: nothing inside them is ever scanned for a placeholder
    for key, value in (("%%LANG%%", "en"), ("%%TITLE%%", escape(title)),
                       ("%%SEEDED%%", seeded), ("%%RELEASE%%", escape(about["release_id"])),
                       ("%%EPSILON%%", escape(f"{about['epsilon']:.3g}")),
                       ("%%K%%", str(int(about["k"]))), ("%%CSS%%", _asset("showcase.css"))):
        page = page.replace(key, value)
    head, tail = page.split("%%DATA%%")
    tail_head, tail_tail = tail.split("%%JS%%")
    js = _asset("showcase.js").replace("</script", "<\\/script")
    return head + data + tail_head + js + tail_tail


def write_showcase(bundle: Bundle | str | Path, out: str | Path) -> Path:
    """Write ``bundle``'s showcase page to ``out`` (the bundle's public files only)."""
    if not isinstance(bundle, Bundle):
        bundle = Bundle.load(bundle)
    out = Path(out)
    out.write_text(render(bundle), encoding="utf-8")
    return out


def stage_showcase(writer: Any, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``showcase.html`` into a staged bundle whose other files (manifest included) are
    written, then rewrite the manifest with its hash; return the new manifest.

    Built from the staged bundle's public files only, read back through :class:`Bundle`. A
    failure here publishes the bundle without the page (and says so in the manifest's
    warnings): the page is post-processing and ``ptsynth showcase`` can build it later.
    """
    from ptsynth.release.bundle import MANIFEST, PRIVATE_FILES, PUBLIC_FILES, SHOWCASE
    from ptsynth.release.manifest import json_default

    try:
        staged = Bundle.load(writer.staging)
        writer.path(SHOWCASE).write_text(render(staged), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - never a reason to lose a release
        writer.path(SHOWCASE).unlink(missing_ok=True)
        manifest = {**manifest, "warnings": [*manifest.get("warnings", []),
                                             f"showcase.html could not be built ({type(exc).__name__}); "
                                             "build it with `ptsynth showcase`"]}
    names = set(writer.files()) | {MANIFEST}
    manifest = {**manifest, "outputs": writer.public_hashes(),
                "files": {"public": [f for f in PUBLIC_FILES if f in names],
                          "private": [f for f in PRIVATE_FILES if f in names]}}
    writer.path(MANIFEST).write_text(json.dumps(manifest, indent=2, default=json_default))
    return manifest
