"""``python -m ptsynth.cli``: the command line."""

from ptsynth.cli import app

app(prog_name="ptsynth")
