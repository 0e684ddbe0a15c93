"""The CI gate bites: under ``CI=true`` a skipped ``required_in_ci`` test fails the run; elsewhere it is a skip.

Run in child pytest processes: first a two-line test file, then the real conformance suite on an interpreter
where ``azure_functions_runtime`` cannot be imported (a package of that name that raises ``ImportError`` is put
first on ``PYTHONPATH``), which is exactly what a machine without the pinned library looks like to the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_REASON = "conformance suite not run: needs Python 3.13 and azure-functions-runtime; found Python"


def run_pytest(args: list[str], *, ci: bool, cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTHONPATH")}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(
        "from tests.ci_gate import pytest_configure, pytest_runtest_makereport  # noqa: F401\n", encoding="utf-8"
    )
    (tmp_path / "test_needed.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.required_in_ci\n"
        "def test_needs_something():\n"
        "    pytest.skip('something is missing here')\n\n"
        "def test_optional():\n"
        "    pytest.skip('optional, fine to skip')\n",
        encoding="utf-8",
    )
    return tmp_path


def test_a_required_skip_fails_under_ci(tiny_suite: Path) -> None:
    run = run_pytest([str(tiny_suite)], ci=True, cwd=tiny_suite, pythonpath=[ROOT])
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 failed, 1 skipped" in run.stdout
    assert "CI=true and it is marked required_in_ci, so the run fails: something is missing here" in run.stdout


def test_a_required_skip_is_only_a_skip_outside_ci(tiny_suite: Path) -> None:
    run = run_pytest([str(tiny_suite)], ci=False, cwd=tiny_suite, pythonpath=[ROOT])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout


@pytest.fixture
def without_runtime(tmp_path: Path) -> Path:
    shadow = tmp_path / "shadow" / "azure_functions_runtime"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden by tests/test_ci_gate.py')\n", encoding="utf-8")
    return shadow.parent


@pytest.mark.parametrize("ci", [True, False], ids=["ci", "local"])
def test_the_conformance_suite_without_its_runtime(without_runtime: Path, ci: bool) -> None:
    target = "tests/conformance/test_conformance_indexing.py::test_indexing_returns_exactly_the_documented_functions"
    run = run_pytest([target], ci=ci, cwd=ROOT, pythonpath=[without_runtime, ROOT])
    assert CONFORMANCE_REASON in run.stdout, run.stdout + run.stderr
    assert "without azure-functions-runtime" in run.stdout
    if ci:
        assert run.returncode == 1, run.stdout + run.stderr
        assert "1 error" in run.stdout  # the skip happens in a fixture's setup: reported as an error
        assert "so the run fails" in run.stdout
    else:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 skipped" in run.stdout
