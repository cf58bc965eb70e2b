"""The ``ptsynth`` command line: thin commands over the library, one module per concern.

Exit codes mean something to CI: 0 success; 1 a privacy budget would be (or was) exceeded;
2 bad input, bad config, bad bundle or an invalid/tampered ledger; 3 an internal error. Error
messages come from the library and never contain a value read from a sensitive record (see
:mod:`ptsynth.cli.common`).
"""

from __future__ import annotations

import json
import sys

import typer

from ptsynth.cli import data, evaluate, query, release
from ptsynth.cli.budget import budget_app
from ptsynth.cli.common import out

app = typer.Typer(
    name="ptsynth",
    help=(
        "Differentially private aggregates and synthetic microdata for human-trafficking case "
        "records. Privacy unit: one person; neighbouring datasets differ by one person's record. "
        "Exit codes: 0 ok, 1 privacy budget exceeded, 2 bad input / config / bundle, 3 internal error."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("demo-data")(data.demo_data)
app.command("init")(data.init)
app.command("validate")(data.validate)
app.command("release")(release.release)
app.command("evaluate")(evaluate.evaluate)
app.command("query")(query.query)
app.command("showcase")(query.showcase)
app.add_typer(budget_app, name="budget", help="Inspect and assert privacy-budget ledgers (for CI).")


@app.command("synthesizers")
def synthesizers() -> None:
    """List the synthesizers, their options and defaults ([release.<name>] in a config)."""
    from ptsynth.synth import registry
    from ptsynth.synth.options import options_dict

    for name in registry.names():
        cls = registry.get(name)
        default = " (default)" if name == registry.DEFAULT else ""
        out.print(f"[bold]{name}[/]{default}: {cls.summary}")
        for key, value in options_dict(registry.parse_options(name, None)).items():
            out.print(f"    {key} = {value!r}", highlight=False)


@app.command("version")
def version() -> None:
    """Print the version."""
    from ptsynth import __version__

    out.print(json.dumps({"ptsynth": __version__, "python": sys.version.split()[0]}))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # python -m ptsynth.cli
    app()
