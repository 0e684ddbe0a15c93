#!/usr/bin/env python3
"""Developer entry point: each command sets up its own virtual environment first.

    python3 dev.py sandbox   # a full rotation on the local stand-ins, step by step
    python3 dev.py test      # the whole test suite (what CI runs)
    python3 dev.py lint      # ruff
    python3 dev.py bench NAME

Only Python 3.11+ is needed; dependencies come from requirements-dev.txt into .venv/.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    """Create .venv and install the dev requirements, again only when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on the system Python
        sys.exit("Python 3.11 or newer is required")
    python = _venv_python()
    if not python.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in REQUIREMENTS)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        print("installing requirements-dev.txt into .venv ...", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
             str(ROOT / "requirements-dev.txt")],
            check=True,
        )
        stamp.write_text(digest)
    return python


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    python = str(ensure_venv())
    os.chdir(ROOT)
    if command == "sandbox":
        return subprocess.call([python, "-m", "standins.sandbox", *rest])
    if command == "test":
        return subprocess.call([python, "-m", "pytest", *rest])
    if command == "lint":
        return subprocess.call([python, "-m", "ruff", "check", ".", *rest])
    if command == "bench":
        if not rest:
            helpers = {"__init__", "app_process", "standin_process"}  # child processes the benches start
            print("benches:", ", ".join(sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in helpers)))
            return 0
        return subprocess.call([python, "-m", f"bench.{rest[0]}", *rest[1:]])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
