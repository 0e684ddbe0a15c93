"""Tests that CI must run: under ``CI=true`` a skip of a test marked ``required_in_ci`` fails the run.

Locally a suite that cannot run here (no Python 3.13 for the conformance suite, no Azurite for the ledger tests)
is skipped with its reason, and ``-ra`` lists it as not run. In CI the same skip would hide a missing install
step behind a green run, so it is turned into a failure that carries the skip's reason.

Hooked in by ``tests/conftest.py``. Skip inside a fixture or the test (``pytest.skip(reason)``), not at module
level: a module-level skip happens before there is a test item to carry the marker.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

MARKER = "required_in_ci"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: must run in CI; under CI=true a skip of this test fails the run")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci() and item.get_closest_marker(MARKER) and not hasattr(report, "wasxfail")):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"  # in setup pytest reports it as an error, in the test body as a failure
    report.longrepr = f"{item.nodeid}: skipped, but CI=true and it is marked {MARKER}, so the run fails: {reason}"
