#!/usr/bin/env python3
"""Developer entry point: each command sets up its own virtual environment first.

    python3 dev.py sandbox           # a full rotation on the local stand-ins, step by step
    python3 dev.py sandbox --serve   # keep the stand-ins running and print what to set for the CLI
    python3 dev.py test              # the whole test suite (what CI runs)
    python3 dev.py cli check         # the operator CLI (python -m shared ...) on the project's Python
    python3 dev.py lint              # ruff
    python3 dev.py bench NAME        # one bench (python3 dev.py bench lists them)
    python3 dev.py python            # which Python the project runs on, and why

The project targets Python 3.13: from 3.13 on, Azure Functions runs the worker library that
requirements.txt pins (azure-functions-runtime), and the conformance suite drives exactly that
library. dev.py looks for 3.13 as `python3.13` on PATH, through the `py` launcher, or in pyenv's
versions folder, and builds .venv with it. Without one it says so, builds .venv with the Python
running dev.py (3.10 or newer) and the tests report the conformance suite as not run. Under
CI=true the conformance suite must run: a missing 3.13 fails.

Dependencies come from requirements-dev.txt into .venv/; Azurite (the Azure Storage emulator, npm
package) into .tools/azurite/ when Node.js and npm are on PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ROOT / ".tools"
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")
TARGET = (3, 13)
MINIMUM = (3, 10)
AZURITE_VERSION = "3.37.0"
AZURITE_DIR = TOOLS / "azurite"
HOW_TO_GET_TARGET = (
    "install Python 3.13 (https://www.python.org/downloads/, `pyenv install 3.13`, `uv python install 3.13`, "
    "or your package manager) and run this command again"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int]
    found_by: str

    @property
    def is_target(self) -> bool:
        return self.version >= TARGET


def _probe(command: list[str]) -> tuple[tuple[int, int], str] | None:
    """The (major, minor) version and the real executable of a Python command, or None if it does not run."""
    try:
        out = subprocess.run(
            [*command, "-c", "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split(maxsplit=2)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return ((int(out[0]), int(out[1])), out[2].strip()) if len(out) == 3 else None


def _pyenv_roots() -> list[Path]:
    roots = []
    if os.environ.get("PYENV_ROOT"):
        roots.append(Path(os.environ["PYENV_ROOT"]))
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            roots.append(
                Path(subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30).stdout.strip())
            )
        except (OSError, subprocess.SubprocessError):
            pass
    roots.append(Path.home() / ".pyenv")
    return [r for r in dict.fromkeys(roots) if str(r) not in ("", ".")]


def find_target_python() -> Interpreter | None:
    """Python 3.13: on PATH, through the py launcher, or pyenv-installed (not necessarily the default python3)."""
    wanted = f"{TARGET[0]}.{TARGET[1]}"
    candidates: list[tuple[list[str], str]] = []
    on_path = shutil.which(f"python{wanted}")
    if on_path:
        candidates.append(([on_path], f"python{wanted} on PATH"))
    launcher = shutil.which("py")
    if launcher:
        candidates.append(([launcher, f"-{wanted}"], f"the py launcher (py -{wanted})"))
    for root in _pyenv_roots():
        for folder in sorted((root / "versions").glob(f"{wanted}*"), reverse=True):
            binary = folder / ("python.exe" if os.name == "nt" else f"bin/python{wanted}")
            if binary.exists() and folder.name.replace(".", "").isdigit():  # 3.13.x, not 3.13t or a virtualenv
                candidates.append(([str(binary)], f"pyenv ({folder})"))
    for command, found_by in candidates:
        probed = _probe(command)
        if probed is not None and probed[0] == TARGET:
            return Interpreter(probed[1], probed[0], found_by)
    return None


def _built_with() -> Interpreter | None:
    """The interpreter .venv was built with, when dev.py runs on .venv's own Python (the CLI, a test)."""
    marker = VENV / ".interpreter.json"
    if Path(sys.prefix).resolve() != VENV.resolve() or not marker.exists():
        return None
    recorded = json.loads(marker.read_text())
    return Interpreter(recorded["path"], tuple(recorded["version"]), "the project's .venv")  # type: ignore[arg-type]


def choose_python() -> Interpreter:
    """Python 3.13 if there is one; run from .venv, the one it was built with (never a rebuild of itself)."""
    inside = _built_with()
    if inside is not None:
        return inside
    target = find_target_python()
    if target is not None:
        return target
    here = Interpreter(sys.executable, sys.version_info[:2], "the Python running dev.py")
    if here.version < MINIMUM:
        sys.exit(f"Python {TARGET[0]}.{TARGET[1]} was not found and this Python is {here.version}: {HOW_TO_GET_TARGET}")
    print(
        f"dev.py: Python {TARGET[0]}.{TARGET[1]} was not found (looked for python{TARGET[0]}.{TARGET[1]} on PATH, "
        f"the py launcher and pyenv's versions folder): {HOW_TO_GET_TARGET}.\n"
        f"dev.py: running on Python {here.version[0]}.{here.version[1]} instead; the worker conformance suite "
        "will be reported as not run.",
        file=sys.stderr,
        flush=True,
    )
    return here


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(interpreter: Interpreter) -> Path:
    """Create .venv with ``interpreter`` and install the dev requirements, again only when something changed."""
    python = _venv_python()
    marker = VENV / ".interpreter.json"
    wanted = {"path": interpreter.path, "version": list(interpreter.version)}
    if python.exists() and (not marker.exists() or json.loads(marker.read_text()) != wanted):
        print(f"dev.py: rebuilding .venv for Python {interpreter.version[0]}.{interpreter.version[1]}", flush=True)
        shutil.rmtree(VENV)
    if not python.exists():
        print(f"creating .venv with Python {interpreter.version[0]}.{interpreter.version[1]} "
              f"({interpreter.found_by}) ...", flush=True)  # fmt: skip
        if interpreter.path == sys.executable:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        else:
            subprocess.run([interpreter.path, "-m", "venv", "--clear", str(VENV)], check=True)
        marker.write_text(json.dumps(wanted))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in REQUIREMENTS)).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        print("installing requirements-dev.txt into .venv ...", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
             str(ROOT / "requirements-dev.txt")],
            check=True,
        )  # fmt: skip
        stamp.write_text(digest)
    return python


def azurite_binary() -> Path:
    return AZURITE_DIR / "node_modules" / ".bin" / ("azurite-blob.cmd" if os.name == "nt" else "azurite-blob")


def ensure_azurite() -> Path | None:
    """Azurite into .tools/azurite (ignored by git, never deployed); None when npm is missing."""
    binary = azurite_binary()
    stamp = AZURITE_DIR / ".version"
    if binary.exists() and stamp.exists() and stamp.read_text() == AZURITE_VERSION:
        return binary
    npm = shutil.which("npm")
    if npm is None:
        print(
            "dev.py: npm was not found, so Azurite (the Azure Storage emulator) is not installed: install Node.js "
            "18+ with npm (https://nodejs.org/) for the ledger tests; the rest run without it.",
            file=sys.stderr,
        )
        return None
    print(f"installing azurite@{AZURITE_VERSION} into .tools/azurite ...", flush=True)
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "--loglevel=error",
         f"azurite@{AZURITE_VERSION}"],
        check=True,
    )  # fmt: skip
    stamp.write_text(AZURITE_VERSION)
    return binary


def _environment(interpreter: Interpreter, azurite: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["SYNC_DEV_PYTHON"] = f"{interpreter.version[0]}.{interpreter.version[1]}"
    if azurite is not None:
        env.setdefault("SYNC_AZURITE_BLOB", str(azurite))
    return env


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    interpreter = choose_python()
    if command == "python":
        print(
            f"Python {interpreter.version[0]}.{interpreter.version[1]} at {interpreter.path} ({interpreter.found_by})"
        )
        return 0
    python = str(ensure_venv(interpreter))
    os.chdir(ROOT)
    azurite = (
        ensure_azurite() if command in ("test", "bench") else (azurite_binary() if azurite_binary().exists() else None)
    )
    env = _environment(interpreter, azurite)
    if command == "sandbox":
        return subprocess.call([python, "-m", "standins.sandbox", *rest], env=env)
    if command == "test":
        return subprocess.call([python, "-m", "pytest", *rest], env=env)
    if command == "cli":
        return subprocess.call([python, "-m", "shared", *rest], env=env)
    if command == "lint":
        return subprocess.call([python, "-m", "ruff", "check", ".", *rest], env=env)
    if command == "bench":
        if not rest:
            helpers = {"__init__", "app_process", "standin_process"}  # child processes the benches start
            print("benches:", ", ".join(sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in helpers)))
            return 0
        return subprocess.call([python, "-m", f"bench.{rest[0]}", *rest[1:]], env=env)
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
