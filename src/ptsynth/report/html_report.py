"""Self-contained HTML evaluation report: one file, inline CSS and SVG, no network.

Why this shape: the steward opens it from a USB stick on an offline machine; one screen of
plain-language verdicts first, charts where looking beats reading, then the tables. Private
figures (computed against real records) carry a red badge and the page a banner: they are not
for publication. Only names, counts and rates are shown; never a record-level value.
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from ptsynth.report import charts
from ptsynth.report.json_report import SUPPORTED_SCHEMA_VERSIONS, normalise_release, to_jsonable

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1a202c;
background:#f7fafc}
main{max-width:1100px;margin:0 auto;padding:0 24px 48px}
.banner{background:#9b2c2c;color:#fff;padding:12px 24px;font-weight:600}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:2px solid #e2e8f0;padding-bottom:4px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:8px 20px 20px;
margin-top:20px}
.badge{display:inline-block;font-size:12px;font-weight:700;padding:2px 8px;border-radius:10px;
margin-left:8px;vertical-align:middle}
.badge.private{background:#fed7d7;color:#822727}.badge.public{background:#c6f6d5;color:#22543d}
ul.verdicts{list-style:none;padding:0}ul.verdicts li{padding:8px 10px;margin:6px 0;
border-left:6px solid #a0aec0;background:#f7fafc}
li.good{border-color:#38a169!important}li.warn{border-color:#d69e2e!important}
li.bad{border-color:#e53e3e!important}li.info{border-color:#3182ce!important}
table{border-collapse:collapse;margin:10px 0;font-size:14px}
th,td{border:1px solid #e2e8f0;padding:4px 8px;text-align:left}th{background:#edf2f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;margin:10px 0;background:#fff}
svg .lbl{font-size:12px;fill:#2d3748}svg .val{font-size:11px;fill:#4a5568}
figure{margin:12px 0}figcaption{font-size:13px;color:#4a5568}
.note{font-size:13px;color:#4a5568}dt{font-weight:600;margin-top:6px}dd{margin-left:16px}
.release-alert{background:#fff5f5;border:3px solid #c53030;border-radius:6px;color:#742a2a;
padding:14px 20px;margin-top:20px;font-size:16px}
.release-alert strong.stamp{display:block;font-size:26px;letter-spacing:1px;color:#c53030}
.release-warnings{background:#fffaf0;border:2px solid #dd6b20;border-radius:6px;
padding:10px 20px;margin-top:16px}.release-warnings h2{margin:4px 0 6px;border:none;
font-size:18px;color:#7b341e}.release-warnings li{margin:6px 0}
.check.ok{color:#22543d;font-weight:600}.check.fail{color:#9b2c2c;font-weight:700}
"""

SCRIPT = """
(function(){var svgs=document.querySelectorAll('svg[data-chart]');
for(var i=0;i<svgs.length;i++){var s=svgs[i],n=0,ms=s.querySelectorAll('.mark');
for(var j=0;j<ms.length;j++){var b=ms[j].getBoundingClientRect();
ms[j].setAttribute('data-rendered-size',b.width.toFixed(1)+'x'+b.height.toFixed(1));
if(b.width>0&&b.height>0){n++;}}s.setAttribute('data-rendered-marks',String(n));
var box=s.getBoundingClientRect(),ls=s.querySelectorAll('text'),c=0;
for(var k=0;k<ls.length;k++){var t=ls[k].getBoundingClientRect();
if(t.left<box.left-0.5||t.right>box.right+0.5){c++;}}
s.setAttribute('data-clipped-labels',String(c));}
document.documentElement.setAttribute('data-report-ready','1');})();
"""


def _badge(visibility: str) -> str:
    if visibility == "public":
        return '<span class="badge public">PUBLIC: from released data only</span>'
    return '<span class="badge private">PRIVATE: computed on real records, steward only</span>'


def _fmt(v: object, fmt: str = ".3f") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return format(v, fmt)
    return str(v)


def _val(fig: dict | None, fmt: str = ".3f") -> str:
    if not isinstance(fig, dict):
        return _fmt(fig, fmt)
    return _fmt(fig.get("value"), fmt)


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for c in r:
            text = escape(_fmt(c) if not isinstance(c, str) else c)
            cls = ' class="num"' if isinstance(c, (int, float)) and not isinstance(c, bool) else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def _section(sid: str, title: str, visibility: str, body: str) -> str:
    return (f'<section id="{escape(sid)}" data-visibility="{escape(visibility)}"><h2>'
            f"{escape(title)}{_badge(visibility)}</h2>{body}</section>")


def _summary(report: dict) -> str:
    items = []
    for v in report.get("summary", {}).get("verdicts", []):
        status = v.get("status", "info")
        status = status if status in ("good", "warn", "bad", "info") else "info"
        items.append(f'<li class="{status}" data-verdict="{escape(str(v.get("id", "")))}">'
                     f'{escape(str(v.get("text", "")))}{_badge(v.get("visibility", "private"))}'
                     "</li>")
    inputs = report.get("inputs", {})
    facts = (f"Real records: {_val(inputs.get('real_records'))} · synthetic records: "
             f"{_val(inputs.get('synthetic_records'))} · holdout records: "
             f"{_val(inputs.get('holdout_records'))} · columns: {len(inputs.get('columns', []))}")
    return _section("summary", "Summary", "private",
                    f'<p class="note">{escape(facts)}</p><ul class="verdicts">{"".join(items)}'
                    "</ul>")


_SIZE_LABELS = (
    ("real_records", "real records used for the release"),
    ("holdout_records", "holdout records (evaluation only, never measured)"),
    ("synthetic_records", "synthetic records released"),
    ("columns", "columns"),
)


def _release_alerts(report: dict) -> str:
    """Warnings of the release, above everything else: they decide whether it may be published."""
    rel = report.get("release")
    if not isinstance(rel, dict):
        return ""
    out = []
    if rel.get("not_for_release"):
        out.append('<div class="release-alert" role="alert" data-release-alert="not-for-release">'
                   '<strong class="stamp">NOT FOR RELEASE</strong>This bundle was made with '
                   "noise from a seeded, reproducible generator (test mode). Its privacy "
                   "guarantee does not hold: do not publish any file of it.</div>")
    warnings = rel.get("warnings") or []
    if warnings:
        items = "".join(f'<li data-release-warning="{i}">{escape(str(w))}</li>'
                        for i, w in enumerate(warnings))
        out.append(f'<div class="release-warnings" role="alert"><h2>Release warnings '
                   f"({len(warnings)})</h2><ul>{items}</ul></div>")
    return "".join(out)


def _share(v: object) -> str:
    return "n/a" if not isinstance(v, (int, float)) or isinstance(v, bool) else f"{100 * v:.2f}%"


def _protection_changes(prot: dict) -> str:
    """What the k-anonymity step changed: per mechanism, per column, and the shares."""
    n_in = prot.get("n_records_in")
    parts = []
    if prot.get("method"):
        parts.append(f'<p class="note">Steps, cheapest first: {escape(str(prot["method"]))}. '
                     "A record in a combination seen fewer than k times first changes one "
                     "quasi-identifier value to a plausible one (recoded); failing that it takes "
                     "the values of its nearest k-anonymous neighbour (copied), joins a group of "
                     "at least k records of its category (aggregated), is redrawn from the "
                     "model, and only then is a value suppressed or the record dropped.</p>")
    rows: list[list[object]] = []
    if "violating_records_before" in prot:
        rows.append(["records in a combination seen fewer than k times (before)",
                     prot.get("violating_records_before"),
                     _share(prot.get("violating_share_before"))])
    if "records_changed" in prot:
        rows.append(["records changed in any way", prot.get("records_changed"),
                     _share(prot.get("records_changed_share"))])

    def share(v: object) -> str:
        return _share(v / n_in) if isinstance(v, int) and isinstance(n_in, int) and n_in else "n/a"

    for key, label in (("records_recoded", "records with a recoded value"),
                       ("records_copied", "records that took a neighbour's values"),
                       ("records_aggregated", "records aggregated into a group of k"),
                       ("records_redrawn", "records redrawn from the model"),
                       ("records_rebalanced", "records moved back toward the table before")):
        if key in prot:
            rows.append([label, prot.get(key), share(prot.get(key))])
    if prot.get("rebalance_note"):
        rows.append(["last step (rebalance)", prot.get("rebalance_note"), ""])
    rows += [
        ["quasi-identifier cells suppressed (set to missing)",
         prot.get("suppressed_cells"), _share(prot.get("suppressed_cell_share"))],
        ["records with a suppressed cell", prot.get("records_with_suppression"),
         _share(prot.get("record_suppression_share"))],
        ["records dropped", prot.get("dropped_records"), _share(prot.get("dropped_share"))],
        ["synthetic records before / after",
         f"{_fmt(n_in)} / {_fmt(prot.get('n_records_out'))}", ""],
    ]
    parts.append(_table(["measure", "count", "share"], rows))
    recoded = prot.get("recoded_cells") if isinstance(prot.get("recoded_cells"), dict) else {}
    supp = (prot.get("suppressed_by_column")
            if isinstance(prot.get("suppressed_by_column"), dict) else {})
    blank = prot.get("blank_share") if isinstance(prot.get("blank_share"), dict) else {}
    lost = prot.get("categories_lost") if isinstance(prot.get("categories_lost"), dict) else {}
    cols = [str(c) for c in prot.get("columns", [])]
    if cols and (recoded or supp or blank):
        per_col = []
        for c in cols:
            b = blank.get(c) if isinstance(blank.get(c), dict) else {}
            gone = lost.get(c) or []
            per_col.append([c, recoded.get(c, "n/a"), supp.get(c, "n/a"),
                            f"{_share(b.get('before'))} → {_share(b.get('after'))}",
                            ", ".join(str(v) for v in gone) if gone else "none"])
        parts.append("<h4>Per quasi-identifier</h4>" + _table(
            ["column", "values recoded", "values suppressed", "blank share before → after",
             "categories no longer present"], per_col))
    parts.append(_figure(charts.hbar_chart(
        "protection-suppression", "Share changed to reach k-anonymity",
        [("records changed", prot.get("records_changed_share")),
         ("QI cells suppressed", prot.get("suppressed_cell_share")),
         ("records with a suppression", prot.get("record_suppression_share")),
         ("records dropped", prot.get("dropped_share"))],
        fmt=".2%", color=charts.PALETTE[4]),
        "Shares of the sampled synthetic records changed by the k-anonymity step "
        "(before it: 0); cells are quasi-identifier cells that held a value."))
    return "".join(parts)


def _release(report: dict) -> str:
    """Release sizes and k-anonymity enforcement (present when the pipeline merged them in)."""
    rel = report.get("release")
    if not isinstance(rel, dict):
        return ""
    parts = []
    rid = report.get("release_id")
    if rid:
        parts.append(f'<p>Release id: <code data-release-id="1">{escape(str(rid))}</code></p>')
    sizes = rel.get("sizes") or {}
    rows: list[list[object]] = [[lab, sizes[key]] for key, lab in _SIZE_LABELS if key in sizes]
    by_len = sizes.get("aggregate_combinations") or {}
    if isinstance(by_len, dict):
        rows += [[f"DP aggregate combinations released, length {ell}", n]
                 for ell, n in sorted(by_len.items(), key=lambda x: int(x[0]))]
    rows += [[str(key).replace("_", " "), val] for key, val in sizes.items()
             if key not in dict(_SIZE_LABELS) and key != "aggregate_combinations"
             and isinstance(val, (int, float, str))]
    if rows:
        parts.append("<h3>Sizes</h3>" + _table(["", "count"], rows))
    outside = (rel.get("ingest") or {}).get("outside_domain") or {}
    if isinstance(outside, dict) and outside:
        parts.append("<h3>Values outside the declared domain" + _badge("private") + "</h3>"
                     + _table(["column", "rows", "became"],
                              [[col, v.get("rows"), v.get("policy")] for col, v in outside.items()
                               if isinstance(v, dict)]))
    prot = rel.get("protection")
    if isinstance(prot, dict):
        parts.append(f"<h3>k-anonymity enforcement on the synthetic records"
                     f"{_badge(prot.get('visibility', 'public'))}</h3>")
        if "suppressed_cells" not in prot:
            qis = prot.get("quasi_identifiers") or prot.get("columns") or []
            parts.append('<p class="check fail">k-anonymity was not enforced'
                         + ("" if qis else " (no quasi-identifiers declared)") + ".</p>")
        else:
            parts.append(_protection_changes(prot))
        final = prot.get("final_check") or prot.get("check")
        if isinstance(final, dict):
            k_, ell = final.get("k", prot.get("k")), final.get("reporting_length")
            cols = ", ".join(str(c) for c in final.get("columns", []))
            if final.get("ok"):
                text = (f"Final check passed: every combination of up to {_fmt(ell)} values of "
                        f"the quasi-identifiers ({cols}) in the synthetic records occurs at "
                        f"least {_fmt(k_)} times (smallest: {_fmt(final.get('smallest_count'))}).")
            else:
                text = (f"Final check FAILED: {_fmt(final.get('rows_affected'))} synthetic "
                        f"records hold a combination occurring fewer than {_fmt(k_)} times.")
            parts.append(f'<p class="check {"ok" if final.get("ok") else "fail"}" '
                         f'data-final-check="{"ok" if final.get("ok") else "fail"}">'
                         f"{escape(text)}</p>")
    return _section("release", "Release", rel.get("visibility", "private"), "".join(parts))


def _budget(report: dict) -> str:
    b = report.get("budget")
    if not b:
        return ""
    entries = b.get("entries", [])
    items = [(e.get("query", ""), e.get("rho", {}).get("value")) for e in entries]
    total = b.get("total", {})
    body = (f'<p>Total: ε = {escape(_fmt(total.get("epsilon"), ".4g"))}, δ = '
            f'{escape(_fmt(total.get("delta"), ".3g"))}, ρ = '
            f'{escape(_fmt(total.get("rho"), ".4g"))}; spent ρ = '
            f'{escape(_val(b.get("spent_rho"), ".4g"))}.</p>')
    if items:
        body += _figure(charts.hbar_chart("budget", "zCDP rho spent per measurement", items,
                                          fmt=".4g", color=charts.PALETTE[3]),
                        "Privacy budget (zCDP ρ) spent by each measurement, from the ledger.")
        body += _table(["measurement", "mechanism", "ρ", "ε"],
                       [[e.get("query", ""), e.get("mechanism", ""), _val(e.get("rho"), ".4g"),
                         _val(e.get("epsilon"), ".4g")] for e in entries])
    return _section("budget", "Privacy budget", "public", body)


def _utility(report: dict) -> str:
    u = report.get("utility") or {}
    parts = []
    m = u.get("marginals", {})
    orders = sorted(m.get("by_order", {}).values(), key=lambda x: x["order"])
    if orders:
        parts.append(_figure(
            charts.grouped_bar_chart(
                "marginal-error", "Marginal TVD by order", [f"{o['order']}-way" for o in orders],
                [("mean TVD", [o["mean"]["value"] for o in orders]),
                 ("max TVD", [o["max"]["value"] for o in orders])]),
            "Total variation distance between real and synthetic marginals (0 = identical)."))
        parts.append(_table(
            ["order", "mean TVD", "max TVD", "column sets", "of", "sampled"],
            [[f"{o['order']}-way", o["mean"]["value"], o["max"]["value"], o["n_sets"],
              o["n_sets_total"], o["sampled"]] for o in orders]))
        worst = [(" × ".join(w["columns"]), w["value"]) for o in orders if o["order"] >= 2
                 for w in o["worst"]]
        if worst:
            parts.append(_figure(charts.hbar_chart("worst-column-sets",
                                                   "Worst column sets by TVD", worst,
                                                   color=charts.PALETTE[1]),
                                 "Column sets (names only) whose marginals the synthetic data "
                                 "reproduce worst."))
    p = u.get("preservation", {})
    bl = p.get("by_length", [])
    if bl:
        parts.append(_figure(
            charts.grouped_bar_chart(
                "preservation-by-length", "Preservation by combination length",
                [f"length {x['length']}" for x in bl],
                [("preservation", [x["preservation"]["value"] for x in bl]),
                 ("suppressed", [x["suppressed"]["value"] for x in bl]),
                 ("fabricated", [x["fabricated"]["value"] for x in bl])],
                fmt=".2f", max_value=1.0),
            "Share of real combination counts preserved; suppressed = real combinations absent "
            "from the synthetic data (of distinct real ones); fabricated = synthetic "
            "combinations absent from the real data (of distinct synthetic ones)."))
    bb = p.get("by_count_bucket", [])
    if bb:
        parts.append(_figure(
            charts.hbar_chart("preservation-by-count", "Preservation by real count",
                              [(f"count {x['bucket']} ({x['combinations']} comb.)", x["value"])
                               for x in bb], max_value=1.0, fmt=".2f",
                              color=charts.PALETTE[2]),
            "Preservation of combinations grouped by their real count."))
    cs = u.get("column_shapes", {})
    pt = u.get("pair_trends", {})
    if cs:
        cols = sorted((c for c in cs.get("columns", []) if c["value"] is not None),
                      key=lambda c: c["value"])[:12]
        parts.append(f"<p>Quality score {escape(_val(u.get('quality_score')))} (column shapes "
                     f"{escape(_val(cs.get('mean')))}, pair trends "
                     f"{escape(_val(pt.get('mean')))}).</p>")
        if cols:
            parts.append(_figure(charts.hbar_chart(
                "column-shapes", "Column shapes (lowest first)",
                [(c["column"], c["value"]) for c in cols], max_value=1.0),
                "1 − TVD (categorical) or 1 − KS on codes (ordered); 1 = identical."))
        worst_pairs = pt.get("worst", [])
        if worst_pairs:
            parts.append(_table(["column pair", "score", "definition"],
                                [[" × ".join(w["columns"]), w["value"], w["definition"]]
                                 for w in worst_pairs]))
    ml = u.get("ml_efficacy")
    if ml:
        rows = []
        for key, lab in (("train_real", "train real → test real"),
                         ("train_synthetic", "train synthetic → test real")):
            r = ml.get(key, {})
            rows.append([lab, _val(r.get("accuracy")), _val(r.get("macro_f1"))])
        rows.append(["ratio synthetic / real", _val(ml.get("accuracy_ratio")),
                     _val(ml.get("macro_f1_ratio"))])
        rows.append(["majority class", _val(ml.get("majority_class_accuracy")), ""])
        parts.append(f"<h3>ML efficacy (target: {escape(str(ml.get('target')))}, "
                     f"test set: {escape(str(ml.get('test_set')))})</h3>")
        parts.append(_table(["model", "accuracy", "macro-F1"], rows))
    agg = u.get("aggregates")
    if agg and agg.get("by_length"):
        parts.append("<h3>DP aggregates vs true counts</h3>")
        parts.append(_table(
            ["length", "released", "MAE", "RMSE", "max error", "released but absent"],
            [[x["length"], x["released_combinations"], x["mean_absolute_error"]["value"],
              x["rmse"]["value"], x["max_absolute_error"]["value"],
              x["released_absent_in_real"]["value"]] for x in agg["by_length"]]))
    return _section("utility", "Utility", "private", "".join(parts))


def _risk(report: dict) -> str:
    r = report.get("risk") or {}
    parts = []
    ka = r.get("k_anonymity", {})
    for side in ("real", "synthetic"):
        k = ka.get(side, {})
        if not k.get("computed"):
            continue
        parts.append(f"<h3>k-anonymity of the {side} data{_badge(k.get('visibility', ''))}</h3>")
        parts.append(_table(
            ["k level", "classes", "classes below k", "records below k"],
            [[k["k_level"]["value"], k["n_classes"]["value"], k["classes_below_k"]["value"],
              k["records_below_k"]["value"]]]))
        dist = [d for d in k.get("class_size_distribution", []) if d["records"] > 0]
        parts.append(_figure(charts.hbar_chart(
            f"class-sizes-{side}", f"Records by equivalence-class size ({side})",
            [(f"class size {d['bucket']}", d["records"]) for d in dist], fmt="d",
            color=charts.PALETTE[5]),
            "How many records sit in quasi-identifier groups of each size (missing QI = its "
            "own value)."))
    ldt = r.get("l_diversity_t_closeness", [])
    if ldt:
        parts.append("<h3>l-diversity and t-closeness (real data)</h3>")
        parts.append(_table(
            ["sensitive", "distinct l", "entropy l", "t (EMD)", "classes with one value"],
            [[x["sensitive"], x["distinct_l"]["value"], x["entropy_l"]["value"],
              x["t_closeness"]["value"], x["classes_with_one_value"]["value"]] for x in ldt]))
    em = r.get("exact_matches", {})
    if em:
        rows = [["synthetic records identical to a real record",
                 _val(em.get("synthetic_in_real"), ".4f")],
                ["real-unique records reproduced", _val(em.get("real_unique_in_synthetic"))]]
        if "holdout_in_real" in em:
            rows.append(["holdout records identical to a real record (chance level)",
                         _val(em.get("holdout_in_real"), ".4f")])
        parts.append("<h3>Exact matches</h3>" + _table(["measure", "value"], rows))
    dcr = r.get("dcr", {})
    kinds = [k for k in ("synthetic", "holdout", "random") if isinstance(dcr.get(k), dict)]
    if kinds:
        parts.append(_figure(charts.grouped_bar_chart(
            "dcr", "Distance to closest real record", kinds,
            [("median", [dcr[k]["median"]["value"] for k in kinds]),
             ("5th percentile", [dcr[k]["p5"]["value"] for k in kinds])]),
            "Distance to the closest real record, for synthetic, holdout (never used) and "
            "uniformly random records; synthetic far below holdout suggests copying."))
    atk = r.get("attacks", [])
    items = []
    for a in atk:
        if a.get("computed") is False:
            continue
        label = a["attack"].replace("_", " ") + (f" ({a['secret']})" if a.get("secret") else "")
        ar, br = a["attack_rate"], a["baseline_rate"]
        items.append({"label": f"{label}: attack", "value": ar["value"], "ci": ar["ci"],
                      "baseline": br["value"], "color": charts.PALETTE[1]})
        if a.get("control_rate"):
            cr = a["control_rate"]
            items.append({"label": f"{label}: control", "value": cr["value"], "ci": cr["ci"],
                          "color": charts.PALETTE[0]})
        items.append({"label": f"{label}: risk", "value": a["risk"]["value"],
                      "ci": a["risk"]["ci"], "color": charts.PALETTE[4]})
    if items:
        parts.append(_figure(charts.interval_chart("attack-risks", "Attack success and risk",
                                                   items),
                             "Success rates with 95% Wilson intervals; grey tick = random-guess "
                             "baseline; risk = (attack − control)/(1 − control)."))
        parts.append(_table(
            ["attack", "risk", "95% CI", "attack rate", "baseline", "control",
             "beats baseline"],
            [[a["attack"] + (f" ({a['secret']})" if a.get("secret") else ""),
              _val(a["risk"]), " – ".join(_fmt(c) for c in a["risk"]["ci"]),
              _val(a["attack_rate"]), _val(a["baseline_rate"]),
              _val(a.get("control_rate")), a["beats_baseline"]]
             for a in atk if a.get("computed") is not False]))
    rare = r.get("rare_combinations", {})
    if rare.get("by_length"):
        parts.append(f"<h3>Rare combinations in the real data (count &lt; {rare['k']})</h3>"
                     '<p class="note">Counts only; the combinations themselves are never '
                     "shown.</p>")
        parts.append(_table(
            ["length", "rare real", "unique real", "rare real in synthetic",
             "unique real in synthetic", "rare and rare in synthetic"],
            [[x["length"], x["rare_real"]["value"], x["unique_real"]["value"],
              x["rare_real_in_synthetic"]["value"], x["unique_real_in_synthetic"]["value"],
              x["rare_leaked"]["value"]] for x in rare["by_length"]]))
    return _section("risk", "Disclosure risk", "private", "".join(parts))


def _definitions(report: dict) -> str:
    defs = report.get("definitions") or {}
    items = "".join(f"<dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd>"
                    for k, v in sorted(defs.items()))
    return (f'<section id="definitions"><h2>Definitions</h2><details><summary>'
            f"{len(defs)} definitions used by this report</summary><dl>{items}</dl></details>"
            "</section>")


def render_html(report: dict) -> str:
    """The report as one HTML string (see the module docstring)."""
    if report.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise ValueError(f"unsupported report schema_version: {report.get('schema_version')!r}")
    report = to_jsonable(normalise_release(report))  # type: ignore[assignment]
    banner = escape(report.get("visibility_note", "This report contains private figures."))
    body = "".join([_release_alerts(report), _summary(report), _release(report),
                    _budget(report), _utility(report), _risk(report), _definitions(report)])
    rel = report.get("release")
    title = ("NOT FOR RELEASE · " if isinstance(rel, dict) and rel.get("not_for_release")
             else "")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
            f"<title>{title}ptsynth evaluation report</title>"
            f"<style>{CSS}</style></head><body>"
            f'<div class="banner" role="alert">NOT FOR PUBLICATION. {banner}</div><main>'
            "<h1>Synthetic data evaluation</h1>"
            f'<p class="note">Report schema version {escape(str(report["schema_version"]))}.'
            "</p>"
            f"{body}</main><script>{SCRIPT}</script></body></html>")


def write_html_report(report: dict, path: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML page for ``report`` (atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    os.replace(tmp, path)
    return path
