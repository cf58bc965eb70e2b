"""The notebooks in notebooks/ are stored without outputs and run top to bottom in a kernel.

They run with nbclient in a real Jupyter kernel (``pip install ".[notebooks]"``, and
``".[sdv]"`` for the SDV notebook; CI installs both); where those are missing the run is skipped
with the reason. Each notebook makes its own data with ptsynth's generator.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_there_are_notebooks() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert {"explore_a_published_release", "dp_synthesis_with_sdv", "plan_a_release_budget",
            "release_walkthrough"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nbclient", reason="notebooks need the 'notebooks' extra")
    pytest.importorskip("ipykernel", reason="notebooks need the 'notebooks' extra")
    import nbformat
    from nbclient import NotebookClient

    imported = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", _code(path), re.M))
    for module in sorted(imported & {"sdv", "matplotlib", "tomli_w"}):
        pytest.importorskip(module, reason=f"{path.name} needs {module}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary folders
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell that failed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors == []
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")
