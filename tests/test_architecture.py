"""The architecture's boundaries (pyproject.toml, [tool.importlinter]): Qt stays in the GUI
package, the GUI reaches the model only through its helper process, and widgets reach the
engine only through the bridge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytest.importorskip("importlinter")


def test_import_contracts_are_kept():
    linter = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(linter), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert " 0 broken" in out.stdout
