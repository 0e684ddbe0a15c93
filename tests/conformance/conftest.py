"""Fixtures of the conformance suite: Microsoft's protos compiled once per session, one worker process per test
module (booted as the host boots it), and per test a clean stand-in estate with the canary check.

Every test in this folder is marked ``required_in_ci``: where Python 3.13 or ``azure-functions-runtime`` is
missing it is skipped with the reason, and under ``CI=true`` that skip fails the run (``tests/ci_gate.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from standins import StandinStack
from standins.scenario import Scenario
from tests.conformance.estate import Estate
from tests.conformance.host import FunctionsHost, worker_environ
from tests.conformance.rpc import compile_protos, load_protos
from tests.harness import TEST_SETTINGS

APP_DIR = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: What the worker needs to run the pinned library: the Python line it supports and the library itself.
REQUIRED_PYTHON = (3, 13)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.required_in_ci)


def unavailable_reason() -> str | None:
    """Why the conformance suite cannot run on this interpreter, or None."""
    try:
        import azure_functions_runtime  # noqa: F401
    except ImportError:
        runtime = False
    else:
        runtime = True
    if sys.version_info[:2] >= REQUIRED_PYTHON and runtime:
        return None
    found = f"Python {sys.version_info[0]}.{sys.version_info[1]}"
    if not runtime:
        found += " without azure-functions-runtime"
    return f"conformance suite not run: needs Python 3.13 and azure-functions-runtime; found {found}"


@pytest.fixture(scope="session")
def conformance_protos(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """The compiled FunctionRpc package (module, folder); skips the suite where the worker cannot run."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    out_dir = compile_protos(tmp_path_factory.mktemp("functions-rpc"))
    return load_protos(out_dir), out_dir


WorkerFactory = Callable[..., FunctionsHost]


@pytest.fixture(scope="module")
def start_worker(
    stack: StandinStack, conformance_protos: tuple[object, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerFactory]:
    """Boots worker processes for this module (init, metadata, load); stops each at the end, expecting exit 0."""
    protos, protos_dir = conformance_protos
    started: list[FunctionsHost] = []

    def start(settings: Mapping[str, str] | None = None, app_dir: Path = APP_DIR) -> FunctionsHost:
        workdir = tmp_path_factory.mktemp("worker")
        config_path = workdir / "sync-config.json"
        config_path.write_text("{}", encoding="utf-8")
        app_settings = {
            **stack.environ(),
            **TEST_SETTINGS,
            "SYNC_CONFIG": str(config_path),
            "PYTHON_ENABLE_DEBUG_LOGGING": "true",  # the app's debug records reach the host too
            **(settings or {}),
        }
        host = FunctionsHost(
            protos=protos,  # type: ignore[arg-type]
            protos_dir=protos_dir,
            app_dir=app_dir,
            environ=worker_environ(os.environ, app_dir, app_settings),
            workdir=workdir,
        )
        started.append(host)
        host.boot()
        return host

    yield start
    codes = [host.stop() for host in started]
    assert codes == [0] * len(started), f"worker exit codes {codes}:\n" + "\n".join(h.console() for h in started)


@pytest.fixture(scope="module")
def worker(start_worker: WorkerFactory) -> FunctionsHost:
    """The module's worker process, warm across its tests as a real one is across invocations."""
    return start_worker()


def estate_for(host: FunctionsHost, stack: StandinStack) -> Estate:
    stack.reset()
    return Estate(host=host, scenario=Scenario(stack), config_path=Path(host.environ["SYNC_CONFIG"]))


@pytest.fixture
def estate(worker: FunctionsHost, stack: StandinStack) -> Iterator[Estate]:
    """A clean stand-in estate for the module's worker; afterwards no planted value may appear anywhere."""
    current = estate_for(worker, stack)
    yield current
    leaks = current.leaks()
    assert not leaks, f"secret values leaked: {leaks}"
