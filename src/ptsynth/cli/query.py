"""``ptsynth query`` and ``ptsynth showcase``: answers and a page from a published bundle.

Both read the bundle's public files only (never ``report.*``); neither needs the records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import guarded, out, warn
from ptsynth.errors import ConfigError


def parse_where(items: list[str], labels_of) -> dict[str, list[str]]:
    """``["gender=Female", "country=US,MX"]`` -> ``{"gender": ["Female"], "country": [...]}``.

    A public label may itself hold a comma (bin labels such as ``[18, 25)``): comma-separated
    pieces are joined back until they name a label of the column.
    """
    where: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("must look like COLUMN=VALUE[,VALUE...]", key="--where")
        column, _, raw = item.partition("=")
        column = column.strip()
        labels = set(labels_of(column))  # raises naming an unknown column
        values: list[str] = []
        if raw in labels:
            values = [raw]
        else:
            pending = ""
            for piece in raw.split(","):
                pending = piece if not pending else pending + "," + piece
                for candidate in (pending, pending.strip()):
                    if candidate in labels:
                        values.append(candidate)
                        pending = ""
                        break
            if pending:
                values.append(pending.strip())  # reported by the query as an unknown value
        where.setdefault(column, [])
        where[column] += [v for v in values if v not in where[column]]
    return where


@guarded
def query(
    bundle: Annotated[Path, typer.Argument(help="A published bundle folder.")],
    where: Annotated[list[str] | None, typer.Option(
        "--where", "-w",
        help="COLUMN=VALUE[,VALUE...]: AND across --where options, OR within one.")] = None,
    by: Annotated[list[str] | None, typer.Option(
        "--by", "-b", help="Break the count down by this column (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count the people matching a selection, with its source and 95% interval."""
    from rich.markup import escape
    from rich.table import Table

    from ptsynth.query import count, engine_for
    from ptsynth.release.bundle import Bundle

    b = Bundle.load(bundle)
    engine = engine_for(b)
    selection = parse_where(where or [], engine.columns.labels)
    result = count(b, where=selection, by=by or [], engine=engine)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    if b.seeded:
        warn("this is a seeded TEST bundle (NOT FOR RELEASE): its noise can be reproduced")
    # Public labels are text, never rich markup (a label such as "[Unknown]" would vanish).
    table = Table(title=escape("count where " + (" AND ".join(
        f"{c} in {{{', '.join(v)}}}" if len(v) > 1 else f"{c} = {v[0]}"
        for c, v in selection.items()) or "(everyone)")))
    for c in result.by:
        table.add_column(escape(c))
    table.add_column("estimate", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("source")
    table.add_column("note")
    for row in result.rows:
        cells = [escape(row.cell[c]) for c in result.by]
        if row.suppressed:
            table.add_row(*cells, f"fewer than {result.k}", "", row.source, escape(row.note))
        else:
            table.add_row(*cells, f"{row.estimate:,.0f}", f"{row.low:,.0f} – {row.high:,.0f}",
                          row.source, escape(row.note))
    out.print(table)


@guarded
def showcase(
    bundle: Annotated[Path, typer.Argument(help="A published bundle folder.")],
    output: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
        "showcase.html"),
) -> None:
    """Write the bundle's offline showcase page (one self-contained HTML file)."""
    from ptsynth.release.bundle import Bundle
    from ptsynth.showcase import write_showcase

    b = Bundle.load(bundle)
    path = write_showcase(b, output)
    out.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): open it in a browser, no "
              "network needed" + (" (a seeded TEST bundle: NOT FOR RELEASE)" if b.seeded else ""))
