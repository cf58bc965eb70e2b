"""Readers for the sector's standard files (HTCDS 2.0 field standards, CTDC v2024 codebook).

Why here, with the standard library only: the preset tests compare each preset's public domains
with the standard's own files at test time, so the check must not depend on the code that
built the presets (``scripts/build_presets.py`` uses these readers too, but the tests re-read
the files themselves). The ``.ods`` is a zip of XML (``content.xml``); the codebook PDF is read
through ``pdftotext -layout`` (poppler-utils), and a caller skips where it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

_NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}
_T = "{" + _NS["text"] + "}"
_TB = "{" + _NS["table"] + "}"


def _paragraph_text(p: ET.Element) -> str:
    """Text of one ``text:p``, with ``text:s`` (runs of spaces), tabs and line breaks."""
    out = [p.text or ""]
    for child in p:
        if child.tag == _T + "s":
            out.append(" " * int(child.get(_T + "c", "1")))
        elif child.tag == _T + "tab":
            out.append("\t")
        elif child.tag == _T + "line-break":
            out.append("\n")
        else:
            out.append(_paragraph_text(child))
        out.append(child.tail or "")
    return "".join(out)


def read_ods_rows(path: str | Path, sheet: int = 0) -> list[list[str]]:
    """Rows of one sheet of an OpenDocument spreadsheet as lists of cell strings.

    A cell with several paragraphs is joined with newlines; repeated empty cells and trailing
    empty rows are dropped.
    """
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("content.xml"))
    tables = root.findall(".//table:table", _NS)
    rows: list[list[str]] = []
    for row in tables[sheet].iter(_TB + "table-row"):
        cells: list[str] = []
        for cell in row:
            if cell.tag not in (_TB + "table-cell", _TB + "covered-table-cell"):
                continue
            text = "\n".join(_paragraph_text(p) for p in cell.findall("text:p", _NS))
            repeat = int(cell.get(_TB + "number-columns-repeated", "1"))
            cells.extend([text] * (repeat if text else min(repeat, 64)))
        while cells and not cells[-1]:
            cells.pop()
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


@dataclass(frozen=True)
class HtcdsField:
    """One field row of the HTCDS field standards (``Field Name including Prefix`` etc.)."""

    section: str
    name: str
    label: str
    type: str
    status: str
    core: bool
    value_names: tuple[str, ...]
    value_labels: tuple[str, ...]
    description: str
    notes: str


def _lines(cell: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in cell.split("\n") if v.strip())


def htcds_fields(path: str | Path) -> list[HtcdsField]:
    """The named fields of ``HTCDS Field Standards 2.0.ods`` (example questions skipped)."""
    rows = read_ods_rows(path)
    header = rows[0]
    col = {h.strip(): i for i, h in enumerate(header)}

    def get(row: list[str], key: str) -> str:
        i = col[key]
        return row[i] if i < len(row) else ""

    fields, section = [], ""
    for row in rows[1:]:
        if get(row, "Section").strip():
            section = " ".join(get(row, "Section").split())
        name = get(row, "Field Name including Prefix").strip()
        if not name:
            continue
        fields.append(HtcdsField(
            section=section, name=name, label=" ".join(get(row, "Field Label").split()),
            type=get(row, "Field Type").strip(), status=get(row, "Status").strip(),
            core=get(row, "Core").strip() == "Core",
            value_names=_lines(get(row, "Value Names (if picklist)")),
            value_labels=_lines(get(row, "Value Labels (if picklist)")),
            description=get(row, "Description").strip(), notes=get(row, "Notes").strip(),
        ))
    return fields


def htcds_template_columns(path: str | Path) -> list[str]:
    """Field names in the hidden first row of ``HTCDS Excel Spreadsheet v2.0.xlsx``."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(path) as z:
        shared = [
            "".join(t.text or "" for t in si.iter(main + "t"))
            for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(main + "si")
        ]
        sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    first = next(sheet.iter(main + "row"))
    names = []
    for c in first.iter(main + "c"):
        v = c.find(main + "v")
        if v is not None and c.get("t") == "s":
            names.append(shared[int(v.text or 0)].strip())
    return names


# -- CTDC Global Synthetic Data codebook v2024 ----------------------------------------------------
def pdftotext_available() -> bool:
    return shutil.which("pdftotext") is not None


def pdf_text(path: str | Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


@dataclass(frozen=True)
class CodebookVariable:
    number: int
    name: str
    label: str
    type: str
    values: tuple[str, ...]  # the bullet points under "Values and categories"


def ctdc_v2024_variables(text: str) -> tuple[list[str], dict[int, CodebookVariable]]:
    """The numbered "LIST OF VARIABLES" and the detailed description of each variable."""
    listing = text.split("LIST OF VARIABLES", 1)[1].split("Notes:", 1)[0]
    names = [m.group(2) for m in re.finditer(r"^\s*(\d+)\s+(\w+)\s*$", listing, re.M)]
    details: dict[int, CodebookVariable] = {}
    blocks = re.split(r"^\s*Variable (\d+)\s*$", text, flags=re.M)
    for number, body in zip(blocks[1::2], blocks[2::2], strict=True):
        field = {k: (re.search(rf"^\s*{k}:\s*(.+)$", body, re.M) or [None, ""])[1].strip()
                 for k in ("Variable name", "Variable label", "Type")}
        values_part = body.split("Values and categories:", 1)[1].split("Definition:", 1)[0]
        values = tuple(m.group(1).strip() for m in re.finditer(r"^\s*•\s*(.+)$", values_part, re.M))
        details[int(number)] = CodebookVariable(
            int(number), field["Variable name"], field["Variable label"], field["Type"], values)
    return names, details
