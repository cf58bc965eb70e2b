"""Build the showcase's map geometry (package data) from public TopoJSON on npm.

Run once by a developer; the output is committed as ``src/ptsynth/showcase/geo/*.json`` and its
sources and licences are recorded in ``src/ptsynth/showcase/geo/LICENSES.md``::

    mkdir /tmp/geo && cd /tmp/geo
    npm pack world-atlas@2.0.2 us-atlas@3.0.1 i18n-iso-countries@7.14.0
    for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}" --strip-components 1; done
    python scripts/build_geometry.py /tmp/geo

What it does: decodes the TopoJSON arcs (delta-encoded, quantized), projects the world with the
Equal Earth projection (Šavrič, Patterson & Jenny 2018; equal-area, so a choropleth's areas are
honest) onto a 960 px wide plane (us-atlas's states are already projected to Albers USA,
975 x 610), simplifies every ring with Douglas-Peucker at a fraction of a pixel, drops rings
smaller than a pixel, and writes one SVG path per country (keyed by ISO 3166-1 alpha-3, with
alpha-2, numeric and English name) and per US state (keyed by USPS code, with FIPS and name).
Countries too small to see get a centroid for a dot. Antarctica is left out.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "ptsynth" / "showcase" / "geo"
WORLD_WIDTH = 960.0
TOLERANCE = 0.35  # px

# USPS code of each state FIPS code (US Census Bureau, public domain).
STATE_FIPS = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL",
    "18": "IN", "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD",
    "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE",
    "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND",
    "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD",
    "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA", "54": "WV",
    "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}


def decode_arcs(topo: dict) -> list[np.ndarray]:
    t = topo.get("transform")
    arcs = []
    for arc in topo["arcs"]:
        a = np.asarray(arc, dtype=np.float64)
        if t:
            a = np.cumsum(a, axis=0) * np.asarray(t["scale"]) + np.asarray(t["translate"])
        arcs.append(a)
    return arcs


def ring(arcs: list[np.ndarray], indices: list[int]) -> np.ndarray:
    pts = []
    for i in indices:
        a = arcs[i] if i >= 0 else arcs[~i][::-1]
        pts.append(a if not pts else a[1:])
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def polygons(geom: dict) -> list[list[list[int]]]:
    if geom["type"] == "Polygon":
        return [geom["arcs"]]
    if geom["type"] == "MultiPolygon":
        return geom["arcs"]
    return []


def unwrap(lonlat: np.ndarray) -> np.ndarray:
    """A ring that crosses the antimeridian jumps by ~360 degrees; move its points to the
    side where most of it lies, so it is drawn whole and the map's edge clips it."""
    if len(lonlat) < 2 or not np.any(np.abs(np.diff(lonlat[:, 0])) > 180):
        return lonlat
    out = lonlat.copy()
    if np.mean(out[:, 0]) > 0:
        out[out[:, 0] < 0, 0] += 360.0
    else:
        out[out[:, 0] > 0, 0] -= 360.0
    return out


def equal_earth(lonlat: np.ndarray) -> np.ndarray:
    a1, a2, a3, a4 = 1.340264, -0.081106, 0.000893, 0.003796
    m = math.sqrt(3) / 2
    lam = np.radians(lonlat[:, 0])
    phi = np.radians(lonlat[:, 1])
    th = np.arcsin(m * np.sin(phi))
    t2 = th * th
    t6 = t2 * t2 * t2
    x = lam * np.cos(th) / (m * (a1 + 3 * a2 * t2 + t6 * (7 * a3 + 9 * a4 * t2)))
    y = th * (a1 + a2 * t2 + t6 * (a3 + a4 * t2))
    return np.stack([x, y], axis=1)


def douglas_peucker(pts: np.ndarray, tol: float) -> np.ndarray:
    if len(pts) < 4:
        return pts
    keep = np.zeros(len(pts), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = pts[i], pts[j]
        seg = b - a
        norm = math.hypot(*seg)
        mid = pts[i + 1 : j]
        if norm == 0:
            d = np.hypot(*(mid - a).T)
        else:
            d = np.abs(seg[0] * (mid[:, 1] - a[1]) - seg[1] * (mid[:, 0] - a[0])) / norm
        k = int(np.argmax(d))
        if d[k] > tol:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return pts[keep]


def area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def path(rings: list[np.ndarray]) -> str:
    parts = []
    for r in rings:
        q = np.round(r, 1)
        cmds = [f"M{q[0, 0]:g} {q[0, 1]:g}"]
        prev = q[0]
        for p in q[1:]:
            d = p - prev
            cmds.append(f"l{round(d[0], 1):g} {round(d[1], 1):g}")
            prev = p
        parts.append("".join(cmds) + "z")
    return "".join(parts)


def shapes(topo: dict, name: str, project, tol: float) -> dict[str, dict]:
    arcs = decode_arcs(topo)
    out = {}
    for geom in topo["objects"][name]["geometries"]:
        rings, total, cx, cy = [], 0.0, 0.0, 0.0
        for poly in polygons(geom):
            for k, idx in enumerate(poly):
                pts = project(ring(arcs, idx))
                simple = douglas_peucker(pts, tol)
                a = abs(area(pts))
                if k == 0:
                    total += a
                    cx += a * float(pts[:, 0].mean())
                    cy += a * float(pts[:, 1].mean())
                if len(simple) >= 4 and abs(area(simple)) >= 0.5:
                    rings.append(simple)
        key = str(geom.get("id", ""))
        out[key] = {"name": geom.get("properties", {}).get("name", ""), "d": path(rings),
                    "c": [round(cx / total, 1), round(cy / total, 1)] if total else None,
                    "area": round(total, 1)}
    return out


def main(root: Path) -> None:
    pkg = {p.name.rsplit("-", 1)[0]: p for p in root.iterdir() if p.is_dir()}
    world = json.loads((pkg["world-atlas"] / "countries-50m.json").read_text())
    codes = json.loads((pkg["i18n-iso-countries"] / "codes.json").read_text())
    names = json.loads((pkg["i18n-iso-countries"] / "langs" / "en.json").read_text())["countries"]
    by_numeric = {num: (a2, a3) for a2, a3, num, *_ in codes}

    # Equal Earth of the whole globe, scaled to WORLD_WIDTH, y downwards
    edge = equal_earth(np.array([[180.0, 0.0], [0.0, 90.0]]))
    sx = WORLD_WIDTH / (2 * edge[0, 0])
    height = 2 * edge[1, 1] * sx

    def project_world(lonlat: np.ndarray) -> np.ndarray:
        xy = equal_earth(unwrap(lonlat))
        return np.stack([(xy[:, 0] + edge[0, 0]) * sx, (edge[1, 1] - xy[:, 1]) * sx], axis=1)

    countries = {}
    for num, shape in shapes(world, "countries", project_world, TOLERANCE).items():
        if num not in by_numeric:
            continue  # disputed areas without an ISO code (e.g. Kosovo, N. Cyprus, Somaliland)
        a2, a3 = by_numeric[num]
        if a3 == "ATA":
            continue
        name = names.get(a2)
        name = name[0] if isinstance(name, list) else name
        countries[a3] = {"a2": a2, "num": num, "name": name or shape["name"], "d": shape["d"],
                         "c": shape["c"], "small": shape["area"] < 20.0}
    us = json.loads((pkg["us-atlas"] / "states-albers-10m.json").read_text())
    states = {}
    for fips, shape in shapes(us, "states", lambda p: p, 0.5).items():
        if fips in STATE_FIPS:
            states[STATE_FIPS[fips]] = {"fips": fips, "name": shape["name"], "d": shape["d"],
                                        "c": shape["c"], "small": shape["area"] < 30.0}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "world.json").write_text(json.dumps(
        {"width": WORLD_WIDTH, "height": round(height, 1), "projection": "Equal Earth",
         "source": "world-atlas 2.0.2 countries-50m (Natural Earth 4.1.0)",
         "shapes": dict(sorted(countries.items()))}, separators=(",", ":")))
    (OUT / "us_states.json").write_text(json.dumps(
        {"width": 975, "height": 610, "projection": "Albers USA (us-atlas)",
         "source": "us-atlas 3.0.1 states-albers-10m (US Census Bureau)",
         "shapes": dict(sorted(states.items()))}, separators=(",", ":")))
    for f in ("world.json", "us_states.json"):
        print(f, (OUT / f).stat().st_size, "bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
