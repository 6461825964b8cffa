"""The analyst walkthrough notebook runs top to bottom (its code cells, in order)."""

from __future__ import annotations

import json
import os
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_notebook_runs(tmp_path, monkeypatch):
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 4
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # the notebook writes to ../data like the repo layout
    namespace: dict = {}
    for src in code:
        exec(compile(src, str(NOTEBOOK), "exec"), namespace)  # noqa: S102
    sites = namespace["sites"]
    assert (sites["rank_logistics"] == 1).sum() == 1
    assert (tmp_path / "data/processed/notebook/omw_sites.gpkg").exists()
    assert os.getcwd() == str(workdir)
