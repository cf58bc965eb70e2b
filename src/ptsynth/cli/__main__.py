"""``python -m ptsynth.cli``: the ``ptsynth`` command without its console script (e.g. from a
notebook's interpreter, ``subprocess.run([sys.executable, "-m", "ptsynth.cli", ...])``)."""

from ptsynth.cli import app

app(prog_name="ptsynth")
