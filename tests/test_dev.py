"""``dev.py`` run by .venv's own Python (the operator CLI, a test) uses .venv as it is: it never rebuilds the
environment it is running in, whatever PATH and HOME say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


@pytest.mark.skipif(Path(sys.prefix).resolve() != VENV.resolve(), reason="the tests run outside the project's .venv")
def test_dev_py_on_the_venvs_own_python_keeps_the_venv(tmp_path: Path) -> None:
    marker = VENV / ".interpreter.json"
    before = marker.read_text()
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no pyenv, no python3.13: a rebuild would follow
    shown = subprocess.run(
        [sys.executable, "dev.py", "python"], cwd=ROOT, env=bare, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "the project's .venv" in shown.stdout
    assert json.loads(marker.read_text()) == json.loads(before)
