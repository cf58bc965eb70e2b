"""Inline SVG charts, written by hand: no JavaScript library, no CDN, no network.

Why our own: the HTML report must open from a USB stick on an offline laptop, so every chart is
plain SVG inside the page. Each chart is an ``<svg class="chart" data-chart="NAME">`` whose data
marks are ``rect``/``path`` elements with ``class="mark"`` and a ``data-value`` attribute, so a
browser test (and a curious reader) can check what was drawn. Every text is ``html.escape``d.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 640
ROW = 22
PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096")


def _fmt(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


#: Pixels per character budgeted for labels (the chart font's widest common glyphs), and the
#: widest label column; longer labels are shortened with an ellipsis, never clipped.
CHAR_PX = 7.2
MAX_LABEL_PX = 460


def _fit_labels(labels: Sequence[str], minimum: int) -> int:
    """Room for the longest label, capped at :data:`MAX_LABEL_PX`."""
    longest = max((len(str(x)) for x in labels), default=0)
    return max(minimum, min(MAX_LABEL_PX, int(CHAR_PX * longest) + 12))


def _label(text: object, width: int) -> str:
    """A label's SVG content that fits ``width`` px: shortened with "…" when too long, the
    full text kept as a tooltip (``<title>``)."""
    full = str(text)
    room = max(4, int((width - 12) / CHAR_PX))
    if len(full) <= room:
        return escape(full)
    return f"<title>{escape(full)}</title>{escape(full[: room - 1])}…"


def _svg_open(name: str, height: int, title: str, width: int = WIDTH) -> str:
    return (f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>')


def hbar_chart(name: str, title: str, items: Sequence[tuple[str, float | None]], *,
               max_value: float | None = None, fmt: str = ".3f", label_width: int = 230,
               color: str = PALETTE[0]) -> str:
    """Horizontal bars, one per (label, value); ``None`` values are drawn as 'n/a'."""
    vals = [v for _, v in items if v is not None]
    top = max_value if max_value is not None else (max(vals) if vals else 1.0)
    top = top if top and top > 0 else 1.0
    label_width = _fit_labels([label for label, _ in items], label_width)
    plot = WIDTH - 230 - 70
    height = 10 + ROW * max(len(items), 1) + 10
    parts = [_svg_open(name, height, title, label_width + plot + 70)]
    for i, (label, v) in enumerate(items):
        y = 10 + i * ROW
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" '
                     f'class="lbl">{_label(label, label_width)}</text>')
        if v is not None:
            w = max(1.0, plot * min(max(v, 0.0), top) / top)
            parts.append(f'<rect class="mark" data-value="{v:.6g}" x="{label_width}" y="{y + 3}" '
                         f'width="{w:.1f}" height="{ROW - 6}" fill="{color}"/>')
            parts.append(f'<text x="{label_width + w + 4:.1f}" y="{y + 15}" class="val">'
                         f'{escape(_fmt(v, fmt))}</text>')
        else:
            parts.append(f'<text x="{label_width + 4}" y="{y + 15}" class="val">n/a</text>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bar_chart(name: str, title: str, groups: Sequence[str],
                      series: Sequence[tuple[str, Sequence[float | None]]], *,
                      fmt: str = ".3f", max_value: float | None = None) -> str:
    """Vertical bars: one group per category, one bar per series, with a legend."""
    vals = [v for _, vs in series for v in vs if v is not None]
    top = max_value if max_value is not None else (max(vals) if vals else 1.0)
    top = top if top and top > 0 else 1.0
    height, base, left = 260, 220, 50
    plot_h = base - 30
    gw = (WIDTH - left - 20) / max(len(groups), 1)
    bw = min(50.0, (gw - 20) / max(len(series), 1))
    parts = [_svg_open(name, height, title),
             f'<path class="axis" d="M{left} {base} H{WIDTH - 10}" stroke="#444"/>']
    for tick in (0.0, 0.5, 1.0):
        y = base - plot_h * tick
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="val">'
                     f'{escape(_fmt(top * tick, fmt))}</text>')
    for gi, g in enumerate(groups):
        x0 = left + gi * gw + 10
        for si, (_sname, vs) in enumerate(series):
            v = vs[gi] if gi < len(vs) else None
            if v is None:
                continue
            h = max(1.0, plot_h * min(max(v, 0.0), top) / top)
            x = x0 + si * bw
            parts.append(f'<rect class="mark" data-value="{v:.6g}" data-series="{escape(_sname)}" '
                         f'x="{x:.1f}" y="{base - h:.1f}" width="{bw - 4:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[si % len(PALETTE)]}"/>')
            parts.append(f'<text x="{x + (bw - 4) / 2:.1f}" y="{base - h - 4:.1f}" '
                         f'text-anchor="middle" class="val">{escape(_fmt(v, fmt))}</text>')
        parts.append(f'<text x="{x0 + len(series) * bw / 2:.1f}" y="{base + 16}" '
                     f'text-anchor="middle" class="lbl">{escape(str(g))}</text>')
    for si, (sname, _) in enumerate(series):
        x = left + si * 140
        parts.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
                     f'fill="{PALETTE[si % len(PALETTE)]}"/>'
                     f'<text x="{x + 14}" y="{height - 7}" class="lbl">{escape(sname)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(name: str, title: str,
                   items: Sequence[dict], *, label_width: int = 230) -> str:
    """Rates in [0, 1] with intervals: one row per item.

    Each item: ``label``, ``value``, ``ci`` (lo, hi) and optionally ``baseline`` (value) and
    ``baseline_ci``. The interval is a ``path`` mark, the estimate a ``rect`` mark (a dot),
    the baseline a grey tick.
    """
    label_width = _fit_labels([it["label"] for it in items], label_width)
    plot = WIDTH - 230 - 30
    height = 30 + ROW * max(len(items), 1) + 24
    parts = [_svg_open(name, height, title, label_width + plot + 30)]
    x_of = lambda v: label_width + plot * min(max(v, 0.0), 1.0)  # noqa: E731
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = x_of(tick)
        parts.append(f'<path class="grid" d="M{x:.1f} 20 V{height - 24}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" class="val">'
                     f'{tick:.2f}</text>')
    for i, it in enumerate(items):
        y = 24 + i * ROW + ROW / 2
        parts.append(f'<text x="{label_width - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="lbl">{_label(it["label"], label_width)}</text>')
        b = it.get("baseline")
        if b is not None:
            bx = x_of(b)
            parts.append(f'<path class="mark baseline" data-value="{b:.6g}" '
                         f'd="M{bx:.1f} {y - 8:.1f} V{y + 8:.1f}" stroke="#999" '
                         f'stroke-width="3"/>')
        v = it.get("value")
        if v is None:
            continue
        lo, hi = it.get("ci") or (v, v)
        lo = v if lo is None else lo
        hi = v if hi is None else hi
        parts.append(f'<path class="mark interval" data-value="{hi - lo:.6g}" '
                     f'd="M{x_of(lo):.1f} {y:.1f} H{max(x_of(hi), x_of(lo) + 1):.1f}" '
                     f'stroke="{it.get("color", PALETTE[1])}" stroke-width="3"/>')
        parts.append(f'<rect class="mark estimate" data-value="{v:.6g}" x="{x_of(v) - 4:.1f}" '
                     f'y="{y - 4:.1f}" width="8" height="8" fill="{it.get("color", PALETTE[1])}"/>')
    parts.append("</svg>")
    return "".join(parts)
