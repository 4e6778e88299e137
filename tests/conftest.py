"""Shared fixtures: every test that runs reports writes into a temporary folder, never into the checkout."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    "Point runs, figures, docs and the model cache at tmp_path; return the folders."
    dirs = {k: tmp_path / k for k in ("runs", "figures", "docs", "cache")}
    monkeypatch.setenv("DRIFT_NB_RUNS_DIR", str(dirs["runs"]))
    monkeypatch.setenv("DRIFT_NB_CACHE_DIR", str(dirs["cache"]))  # never the user's model cache
    monkeypatch.delenv("DRIFT_NB_NO_CACHE", raising=False)
    monkeypatch.setenv("DRIFT_NB_FIGURES_DIR", str(dirs["figures"]))
    monkeypatch.setenv("DRIFT_NB_DOCS_DIR", str(dirs["docs"]))
    monkeypatch.setenv("DRIFT_NB_ROOT", str(ROOT))
    return dirs


@pytest.fixture
def reports_copy(tmp_path, monkeypatch):
    "A private reports folder holding a copy of data_overview; tests may add reports to it."
    d = tmp_path / "reports"
    d.mkdir()
    shutil.copy2(ROOT / "nbs" / "reports" / "data_overview.ipynb", d)
    monkeypatch.setenv("DRIFT_NB_REPORTS_DIR", str(d))
    return d


def drift_nb(*args, timeout=600):
    "Run the installed `drift-nb` console script; return the CompletedProcess."
    exe = BIN / "drift-nb"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from drift_nb.cli import main; sys.exit(main())"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def tree(d: Path) -> list:
    "Every file below d (relative), or [] when d does not exist."
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()) if d.exists() else []
