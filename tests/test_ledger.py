"""The durable ledger on real Blob Storage (Azurite): records, leases as locks, conditional writes, outages.

Every test here uses the ``storage`` fixture: ``AzureWebJobsStorage`` points at Azurite behind a
fault-injecting proxy (``standins.storage``), so the app's real azure-storage-blob code path runs,
and the fixture checks afterwards that no planted secret value reached any blob.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest

import function_app
from shared.core.config import Target
from shared.core.retry import Deadline
from shared.ledger.blob import BlobLedger
from shared.ledger.records import LastPush, LedgerRecord, PushedVersion, newer_of
from standins import Fault
from standins.azurite import Azurite
from standins.storage import StorageProxy
from tests.harness import Harness


def _record_blob(harness: Harness, storage: StorageProxy, target: str) -> dict:
    import os

    from azure.storage.blob import BlobClient

    blob = BlobClient.from_connection_string(
        storage.connection_string, os.environ["SYNC_LEDGER_CONTAINER"], f"targets/{target}.json"
    )
    return json.loads(blob.download_blob().readall())


def _ledger() -> BlobLedger:
    ledger = function_app.state.service().worker.ledger
    assert isinstance(ledger, BlobLedger)
    return ledger


def test_storage_configured_selects_the_durable_ledger_and_a_push_is_recorded(
    harness: Harness, storage: StorageProxy
) -> None:
    setup = harness.scenario.add_target("t1", job_status="Quarantine")
    harness.configure()
    answer = harness.post({})
    assert answer.status == 200, answer.text
    assert _ledger().durable

    stored = _record_blob(harness, storage, "t1")
    version = harness.stack.keyvault.current_version(setup.secret_name)
    pushed = stored["lastPush"]["versions"]["SecretToken"]
    assert pushed["version"] == version and pushed["secret"] == setup.secret_name and pushed["vault"] == "standin-kv"
    assert datetime.fromisoformat(pushed["created"]).tzinfo is not None  # Key Vault's created time, kept for ordering
    assert stored["lastPush"]["invocationId"] == answer.invocation_id
    assert stored["lastAttempt"] | {"at": None} == {
        "at": None, "invocationId": answer.invocation_id, "trigger": "http", "outcome": "pushed", "errorCode": None,
    }  # fmt: skip
    assert stored["jobStatus"] == "Quarantine" and stored["jobId"] == setup.job_id
    assert stored["servicePrincipalId"] == setup.service_principal_id
    text = json.dumps(stored)
    assert not any(value in text for value in harness.scenario.canary_values)


def test_a_warm_sync_costs_one_lease_one_read_one_write_and_a_release(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200  # first sync: creates the container and the record
    _ledger().drain()
    before = storage.calls_for("t1")
    assert harness.post({}).status == 200
    _ledger().drain()  # the release goes out after the answer
    warm = storage.calls_for("t1") - before
    assert warm == {"acquire": 1, "read": 1, "write": 1, "release": 1}


def test_a_failed_sync_records_its_error_code_and_keeps_the_last_push(harness: Harness, storage: StorageProxy) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    pushed_version = harness.stack.keyvault.current_version(setup.secret_name)
    harness.scenario.rotate(setup.secret_name, accept=False)  # a wrong token lands in Key Vault
    answer = harness.post({})
    assert answer.status == 422
    stored = _record_blob(harness, storage, "t1")
    assert stored["lastAttempt"]["outcome"] == "failed"
    assert stored["lastAttempt"]["errorCode"] == answer.result("t1")["error"]["code"]
    assert stored["lastPush"]["versions"]["SecretToken"]["version"] == pushed_version


@pytest.mark.parametrize("hop", ["acquire", "read"])
@pytest.mark.parametrize("status", [503, 500])
def test_storage_failing_before_the_push_is_retryable_and_pushes_nothing(
    harness: Harness, storage: StorageProxy, hop: str, status: int
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    before = harness.scenario.job_token("t1")
    storage.inject(hop, Fault.status(status), times=-1)
    answer = harness.post({})
    assert answer.status == 503, answer.text
    error = answer.result("t1")["error"]
    assert error["code"] == "LedgerUnavailable" and error["retryable"] is True
    assert harness.stack.graph.records("put_secrets") == []
    assert harness.scenario.job_token("t1") == before


def test_storage_unreachable_is_retryable_and_pushes_nothing(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    storage.stop()  # the port is closed
    answer = harness.post({})
    assert answer.status == 503
    assert answer.result("t1")["error"]["code"] == "LedgerUnavailable"
    assert harness.stack.graph.records("put_secrets") == []


def test_a_throttled_storage_answer_is_retried(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    storage.inject("acquire", Fault.status(503, retry_after="0"), times=1)
    storage.inject("write", Fault.reset(), times=1)
    answer = harness.post({})
    assert answer.status == 200, answer.text
    assert answer.result("t1")["status"] == "pushed"


def test_storage_denying_access_names_the_role(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    storage.inject("acquire", Fault.status(403), times=-1)
    answer = harness.post({})
    assert answer.status == 422
    error = answer.result("t1")["error"]
    assert error["code"] == "LedgerForbidden" and "Storage Blob Data" in error["message"]


def test_a_record_that_cannot_be_written_after_a_push_keeps_the_lock_and_asks_for_a_retry(
    harness: Harness, storage: StorageProxy
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    storage.inject("write", Fault.status(503), times=-1)
    answer = harness.post({})
    assert answer.status == 503  # Event Grid delivers again, so the record catches up
    result = answer.result("t1")
    assert result["status"] == "pushed"
    assert [w["code"] for w in result["warnings"]] == ["LedgerWriteFailed"] and result["warnings"][0]["retryable"]
    _ledger().drain()
    released = [r for r in storage.requests if r.hop == "release"]
    assert len(released) == 1  # only the first sync released; this one leaves its lease to expire


def _slow_calls_allowed(harness: Harness) -> None:
    """A read timeout longer than the lease, so one Graph call can outlast it."""
    harness.monkeypatch.setenv("SYNC_HTTP_READ_TIMEOUT_SECONDS", "25")


def test_a_lease_is_renewed_while_a_slow_call_runs(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    _slow_calls_allowed(harness)
    harness.stack.graph.inject("validate", Fault.slow(16.5), times=1)  # longer than the 15 s lease
    answer = harness.post({})
    assert answer.status == 200, answer.text
    assert storage.calls_for("t1")["renew"] >= 2


def test_a_lease_that_cannot_be_renewed_stops_the_push(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    _slow_calls_allowed(harness)
    before = harness.scenario.job_token("t1")
    storage.inject("renew", Fault.status(503), times=-1)
    harness.stack.graph.inject("validate", Fault.slow(16.5), times=1)
    answer = harness.post({})
    assert answer.status == 503
    error = answer.result("t1")["error"]
    assert error["code"] == "LedgerUnavailable" and "lost" in error["message"]
    assert harness.stack.graph.records("put_secrets") == []
    assert harness.scenario.job_token("t1") == before


def test_a_busy_target_waits_for_the_lease_and_fails_as_target_busy_at_the_deadline(
    harness: Harness, storage: StorageProxy
) -> None:
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=2)
    assert harness.post({}).status == 200
    target = function_app.state.service().worker.config().targets[0]
    with _ledger().hold(target, Deadline(30)):
        answer = harness.post({})
    assert answer.status == 503
    assert answer.result("t1")["error"]["code"] == "TargetBusy"
    assert storage.calls_for("t1")["acquire"] >= 3  # it kept asking, with backoff


def _target(name: str = "t1") -> Target:
    return Target(name, "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11", None, None, {}, True)


def _push(version: str, created: datetime) -> LastPush:
    return LastPush(created, "inv", {"SecretToken": PushedVersion("kv", "s", version, created)})


def test_two_writers_never_lose_an_update(harness: Harness, storage: StorageProxy, azurite: Azurite) -> None:
    """A second writer changes the record under the same lease: the first writer's ETag no longer matches,
    so it re-reads, merges and writes again (both updates survive)."""
    from azure.storage.blob import BlobClient

    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    ledger = _ledger()
    target = _target()
    old, new = datetime(2026, 1, 1).astimezone(), datetime(2026, 6, 1).astimezone()
    with ledger.hold(target, Deadline(30)) as hold:
        other = BlobClient.from_connection_string(
            azurite.connection_string, ledger._container.container_name, "targets/t1.json"
        )
        theirs = LedgerRecord.empty("t1", target.service_principal_id)
        theirs = LedgerRecord(**{**theirs.__dict__, "last_push": _push("v-new", new)})
        other.upload_blob(theirs.to_bytes(), overwrite=True, lease=hold._lease.id)  # the other writer
        ours = LedgerRecord(**{**hold.record.__dict__, "last_push": _push("v-old", old), "expiry_reported": {"k": "d"}})
        hold.save(ours)
    stored = ledger.read(target, Deadline(30))
    assert stored.pushed_version("SecretToken").version == "v-new"  # their newer push survived
    assert stored.expiry_reported == {"k": "d"}  # and our own change too


def test_merge_keeps_the_push_whose_versions_were_created_later() -> None:
    old, new = datetime(2026, 1, 1).astimezone(), datetime(2026, 6, 1).astimezone()
    base = LedgerRecord.empty("t1", "sp")
    a = LedgerRecord(**{**base.__dict__, "last_push": _push("v1", old)})
    b = LedgerRecord(**{**base.__dict__, "last_push": _push("v2", new)})
    assert newer_of(a, b).pushed_version("SecretToken").version == "v2"
    assert newer_of(b, a).pushed_version("SecretToken").version == "v2"


def test_a_record_of_another_service_principal_counts_as_empty() -> None:
    stored = LedgerRecord(
        **{**LedgerRecord.empty("t1", "sp-a").__dict__, "last_push": _push("v1", datetime.now().astimezone())}
    )
    assert LedgerRecord.from_bytes(stored.to_bytes(), "t1", "sp-b").last_push is None
    assert LedgerRecord.from_bytes(stored.to_bytes(), "t1", "sp-a").last_push is not None
    assert LedgerRecord.from_bytes(b"not json", "t1", "sp-a") == LedgerRecord.empty("t1", "sp-a")


def test_concurrent_syncs_in_one_process_serialise_through_the_lease(harness: Harness, storage: StorageProxy) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    harness.stack.graph.inject("validate", Fault.slow(0.5), times=1)
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(harness.post({}).status)) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert answers == [200, 200]
    _ledger().drain()
    assert len(harness.stack.graph.records("put_secrets")) == 2
    # the lease serialised them: granted, released, granted, released -- never granted twice in a row
    lease = [(r.hop, r.status) for r in storage.requests if r.hop in ("acquire", "release") and r.status in (200, 201)]
    assert [hop for hop, _ in lease] == ["acquire", "release", "acquire", "release"]
    assert any(r.hop == "acquire" and r.status == 409 for r in storage.requests)  # the second one had to wait
