"""Indexing through Microsoft's worker library: what the host learns about the app from ``WorkerInitRequest``,
``FunctionsMetadataRequest`` and ``FunctionLoadRequest``.

The names, bindings, route, methods and auth level are what the rest of the project relies on: ``infra/events.bicep``
and the postdeploy hooks subscribe ``{app}/functions/keyvault_events``; the README documents
``POST /api/sync`` with a function key; ``infra/`` sets ``SYNC_RECONCILE_SCHEDULE`` for the timer.

``test_indexed_function_metadata`` prints the metadata exactly as the suite receives it
(``pytest tests/conformance/test_conformance_indexing.py -s -k indexed_function_metadata``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tests.conformance.conftest import WorkerFactory
from tests.conformance.host import FunctionsHost

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = {"sync", "keyvault_events", "reconcile"}


def bindings(worker: FunctionsHost, name: str) -> dict[str, dict[str, Any]]:
    return {b["name"]: b for b in worker.raw_bindings(name)}


def test_worker_init_succeeds_and_the_library_indexes_three_functions(worker: FunctionsHost) -> None:
    init = worker.exchanges[0].response.worker_init_response
    assert init.result.status == worker.protos.StatusResult.Success, init.result.exception.message
    assert init.worker_metadata.runtime_name == "python"
    assert init.worker_metadata.runtime_version == "3.13"
    indexed = [json.loads(log.message) for log in worker.exchanges[0].logs if "Successfully indexed" in log.message]
    assert [entry["function_count"] for entry in indexed] == [3]


def test_the_capabilities_the_host_conversions_rely_on(worker: FunctionsHost) -> None:
    """The suite's host sends HTTP bodies as raw bytes only and drops the request from the trigger metadata
    because the library asks for exactly that; if it stopped asking, the host would send something else."""
    for capability in ("RawHttpBodyBytes", "RpcHttpBodyOnly", "RpcHttpTriggerMetadataRemoved", "TypedDataCollection"):
        assert worker.worker_capabilities.get(capability) == "true", capability


def test_indexing_returns_exactly_the_documented_functions(worker: FunctionsHost) -> None:
    assert set(worker.functions) == DOCUMENTED
    for metadata in worker.functions.values():
        assert metadata.language == "python"
        assert metadata.script_file.endswith("function_app.py")
        assert Path(metadata.directory) == ROOT
        assert metadata.properties["worker_indexed"] == "True"
    loads = [
        e.response.function_load_response for e in worker.exchanges if e.response.HasField("function_load_response")
    ]
    assert sorted(r.function_id for r in loads) == sorted(m.function_id for m in worker.functions.values())
    assert all(r.result.status == worker.protos.StatusResult.Success for r in loads)


def test_sync_is_post_and_options_on_route_sync_with_a_function_key(worker: FunctionsHost) -> None:
    found = bindings(worker, "sync")
    assert set(found) == {"req", "$return"}
    trigger = found["req"]
    assert trigger["type"] == "httpTrigger"
    assert trigger["direction"] == "IN"
    assert trigger["route"] == "sync"  # the host serves it at /api/sync (default routePrefix "api")
    assert sorted(m.upper() for m in trigger["methods"]) == ["OPTIONS", "POST"]
    assert trigger["authLevel"].lower() == "function"
    assert found["$return"] == {"direction": "OUT", "type": "http", "name": "$return"}
    assert "POST /api/sync` (function key)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "routePrefix" not in (ROOT / "host.json").read_text(encoding="utf-8")


def test_keyvault_events_is_the_event_grid_trigger_infra_subscribes(worker: FunctionsHost) -> None:
    assert bindings(worker, "keyvault_events") == {
        "event": {"direction": "IN", "type": "eventGridTrigger", "name": "event"}
    }
    events_bicep = (ROOT / "infra" / "events.bicep").read_text(encoding="utf-8")
    assert "param functionName string = 'keyvault_events'" in events_bicep
    assert "/functions/${functionName}" in events_bicep
    for hook in ("subscribe-keyvault-events.sh", "subscribe-keyvault-events.ps1"):
        assert "/functions/keyvault_events" in (ROOT / "infra" / "scripts" / hook).read_text(encoding="utf-8")


def test_reconcile_is_a_timer_on_the_schedule_setting_infra_sets(worker: FunctionsHost) -> None:
    assert bindings(worker, "reconcile") == {
        "timer": {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%SYNC_RECONCILE_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    }
    assert "SYNC_RECONCILE_SCHEDULE:" in (ROOT / "infra" / "app" / "function.bicep").read_text(encoding="utf-8")


def test_indexed_function_metadata(worker: FunctionsHost) -> None:
    """Prints the ``FunctionMetadataResponse`` as received (proto text format), for the record."""
    response = next(e.response for e in worker.exchanges if e.response.HasField("function_metadata_response"))
    metadata = response.function_metadata_response
    assert metadata.result.status == worker.protos.StatusResult.Success
    assert not metadata.use_default_metadata_indexing
    print("\n--- FunctionMetadataResponse (azure-functions-runtime, as the conformance suite received it) ---")
    print(text_format.MessageToString(metadata, as_utf8=True))


def test_the_annotation_of_issue_9_fails_indexing(start_worker: WorkerFactory, tmp_path: Path) -> None:
    """What issue 9 found, kept as a check that this suite sees it: a copy of the app whose ``context`` parameter
    is annotated ``func.Context | None`` is rejected by the library at indexing, and the host gets no functions."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "shared", app / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "host.json", app / "host.json")
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    assert source.count("context: func.Context)") == 3
    (app / "function_app.py").write_text(source.replace("context: func.Context)", "context: func.Context | None)"))

    broken = start_worker(app_dir=app)

    init = broken.exchanges[0].response.worker_init_response
    assert init.result.status == broken.protos.StatusResult.Failure
    assert 'FunctionLoadError: cannot load the sync function: the "context" parameter is expected to be of type ' \
           "azure.functions.Context" in init.result.exception.message  # fmt: skip
    assert broken.functions == {}
