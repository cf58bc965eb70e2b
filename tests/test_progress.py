"""Progress of long steps: rich bars on a (fake) terminal, plain lines in logs, --quiet."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import ptsynth
from ptsynth.cli import app
from ptsynth.demo import demo_config_path
from ptsynth.progress import ConsoleProgress, ProgressEvent, ProgressReporter, console_progress

runner = CliRunner()


def _terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=140, color_system=None), buf


def _screens(text: str) -> list[str]:
    """Every line the terminal was shown, control codes removed."""
    return [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", part) for part in re.split(r"[\r\n]", text)]


def test_bars_on_a_terminal_show_rows_per_second_then_one_line_without_counts() -> None:
    console, buf = _terminal()
    with ConsoleProgress(console) as display:
        assert display.mode == "bars"
        reporter = ProgressReporter(display)
        task = reporter.start("read", "reading and validating records", unit="rows")
        time.sleep(0.15)
        task.advance(12_000)
        rounds = reporter.start("measure", "adaptive rounds", total=24, unit="rounds")
        time.sleep(0.15)
        rounds.advance(3)
        task.finish()
        rounds.finish()
    screens = _screens(buf.getvalue())
    bar = next(s for s in screens if "reading and validating records" in s and "rows/s" in s)
    assert "12,000 rows" in bar and "━" in bar
    assert any("adaptive rounds" in s and "3/24 rounds" in s for s in screens)
    done = [s for s in screens if "done in" in s]
    assert [s.split(":")[0].strip() for s in done] == [
        "✓ reading and validating records", "✓ adaptive rounds"]
    assert not any(ch.isdigit() for s in done for ch in s.split(":")[0])  # no count stays


def test_a_real_release_draws_every_step(demo_csv: Path, tmp_path: Path) -> None:
    console, buf = _terminal()
    with console_progress(console) as progress:
        ptsynth.release(demo_csv, demo_config_path(), tmp_path / "b", seed=1,
                        synthesizer="aggregate", progress=progress)
    done = [s.strip() for s in _screens(buf.getvalue()) if "done in" in s]
    expected = ["reading and validating records", "measuring the DP aggregate table",
                "sampling synthetic records", "enforcing k-anonymity",
                "evaluating utility and disclosure risk", "building the showcase page",
                "writing the bundle"]
    assert len(done) == len(expected)
    for line, step in zip(done, expected, strict=True):
        assert line.startswith(f"✓ {step}")


def test_lines_when_not_a_terminal_and_nothing_when_quiet() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=140)
    events = [ProgressEvent("read", "reading", 0, None, "rows"),
              ProgressEvent("read", "reading", 500, None, "rows", elapsed=0.1),
              ProgressEvent("read", "reading", 900, None, "rows", finished=True, elapsed=0.25)]
    with ConsoleProgress(console) as display:
        assert display.mode == "lines"
        for e in events:
            display(e)
    assert buf.getvalue().splitlines() == ["- reading …", "- reading: done in 0.2 s"]
    quiet = io.StringIO()
    with console_progress(Console(file=quiet, force_terminal=True), quiet=True) as reporter:
        for e in events:
            reporter.emit(e)
    assert quiet.getvalue() == ""
    with pytest.raises(ValueError, match="mode"):
        ConsoleProgress(console, mode="loud")


def _release_args(demo_csv: Path, out: Path, *extra: str) -> list[str]:
    return ["release", str(demo_csv), "--config", str(demo_config_path()), "--out", str(out),
            "--seed", "2", "--synthesizer", "aggregate", "--no-evaluate", *extra]


def test_cli_logs_one_line_per_step_and_is_silent_with_quiet(demo_csv: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, _release_args(demo_csv, tmp_path / "a"))
    assert res.exit_code == 0, res.output
    assert "- reading and validating records …" in res.stderr
    assert "- measuring the DP aggregate table: done in" in res.stderr
    assert "━" not in res.stderr  # no bars in a log
    res = runner.invoke(app, _release_args(demo_csv, tmp_path / "b", "--quiet"))
    assert res.exit_code == 0, res.output
    assert "reading and validating" not in res.stderr and "done in" not in res.stderr
    assert "synthetic records" in res.stdout  # the result line is still printed
    res = runner.invoke(app, ["validate", str(demo_csv), "--config", str(demo_config_path()), "-q"])
    assert res.exit_code == 0 and res.stderr == ""


def test_cli_draws_bars_on_a_terminal(demo_csv: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ptsynth.cli import common

    console, buf = _terminal()
    monkeypatch.setattr(common, "err", console)
    res = runner.invoke(app, _release_args(demo_csv, tmp_path / "c"))
    assert res.exit_code == 0, res.output
    screens = _screens(buf.getvalue())
    assert any("reading and validating records" in s and "rows" in s and "━" in s for s in screens)
    assert any(s.startswith("✓ measuring the DP aggregate table: done in") for s in screens)
    buf.truncate(0)
    res = runner.invoke(app, _release_args(demo_csv, tmp_path / "d", "--quiet"))
    assert res.exit_code == 0 and "done in" not in buf.getvalue()
