"""Evaluation reports: schema-versioned JSON and a self-contained HTML page."""

from __future__ import annotations

from ptsynth.report.html_report import render_html, write_html_report
from ptsynth.report.json_report import (
    normalise_release,
    read_json_report,
    to_jsonable,
    write_json_report,
)

__all__ = ["write_json_report", "read_json_report", "write_html_report", "render_html",
           "to_jsonable", "normalise_release"]
