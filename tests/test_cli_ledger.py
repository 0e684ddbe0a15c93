"""``status`` shows the ledger's record beside the live job status; ``check``, ``status`` and ``sync`` say when
syncing is paused."""

from __future__ import annotations

import pytest

from shared import cli
from standins.storage import StorageProxy
from tests.harness import Harness
from tests.test_cli import run, run_json


def test_status_shows_the_durable_ledgers_record_per_target(
    harness: Harness, storage: StorageProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.scenario.add_target("t2")
    harness.configure()
    pushed = harness.post({"targets": ["t1"]})
    assert pushed.status == 200
    version = harness.stack.keyvault.current_version(setup.secret_name)

    code, document = run_json(harness, capsys, "status")
    assert code == cli.EXIT_OK
    assert document["paused"] is False and "Blob Storage" in document["ledger"]
    by_name = {t["target"]: t for t in document["targets"]}
    record = by_name["t1"]["ledger"]
    assert record["lastPush"]["versions"]["SecretToken"]["version"] == version
    assert record["lastPush"]["invocationId"] == pushed.invocation_id
    assert record["lastAttempt"]["outcome"] == "pushed" and record["lastAttempt"]["trigger"] == "http"
    assert by_name["t1"]["jobStatus"] == "Active"  # the live status, beside the record
    assert by_name["t2"]["ledger"]["lastPush"] is None

    code, text = run(harness, capsys, "status")
    assert "ledger: Azure Blob Storage" in text
    assert f"SecretToken={version}" in text and "never (by this ledger)" in text


def test_status_without_storage_says_the_ledger_is_in_process(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    code, document = run_json(harness, capsys, "status")
    assert code == cli.EXIT_OK
    assert document["ledger"].startswith("in-process")


def test_storage_down_makes_status_exit_retryable(
    harness: Harness, storage: StorageProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    storage.stop()
    code, document = run_json(harness, capsys, "status")
    assert code == cli.EXIT_RETRYABLE
    assert document["targets"][0]["ledger"]["error"]["code"] == "LedgerUnavailable"


def test_paused_check_and_status_say_so_and_sync_refuses(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    harness.monkeypatch.setenv("SYNC_PAUSED", "true")
    code, document = run_json(harness, capsys, "check")
    pause = [r for r in document["checks"] if r["check"] == "pause"]
    assert pause and "paused" in pause[0]["warning"]
    code, text = run(harness, capsys, "status")
    assert text.startswith("PAUSED: SYNC_PAUSED is on")
    before = len(harness.stack.graph.records("put_secrets"))
    code, document = run_json(harness, capsys, "sync")
    assert code == cli.EXIT_RETRYABLE and document["error"]["code"] == "SyncPaused"
    assert len(harness.stack.graph.records("put_secrets")) == before
    code, document = run_json(harness, capsys, "sync", "--dry-run")
    assert code == cli.EXIT_OK  # a dry run pushes nothing
