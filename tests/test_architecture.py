"""Imports point down the layers declared in pyproject.toml (import-linter contract)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def test_layer_contract_holds():
    root = Path(__file__).resolve().parents[1]
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run([exe], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
