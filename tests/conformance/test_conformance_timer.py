"""The reconcile timer through Microsoft's worker library, with the durable ledger on Azurite.

The worker process gets ``AzureWebJobsStorage`` (Azurite) as an app setting, as in Azure, so its syncs
take blob leases and write records; the timer tick arrives as the host's ``TimerInfo`` JSON. A retryable
failure in the run comes back as a failed invocation, a permanent one as a successful invocation.

Which README statement each test backs: ``tests/conformance/statements.py`` (checked against README.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from standins import Fault
from standins.azurite import Azurite
from tests.conformance.conftest import WorkerFactory
from tests.conformance.estate import Estate
from tests.conformance.host import FunctionsHost


@pytest.fixture(scope="module")
def worker(start_worker: WorkerFactory, azurite: Azurite) -> FunctionsHost:
    return start_worker(
        {"AzureWebJobsStorage": azurite.connection_string, "SYNC_LEDGER_CONTAINER": f"conf-{uuid.uuid4().hex[:12]}"}
    )


@pytest.fixture
def pushed(estate: Estate) -> Iterator[Estate]:
    """One target, pushed once over HTTP, so the ledger has its record."""
    estate.scenario.add_target("app-a", secret_name="token-a")
    estate.configure()
    assert estate.post({}).status == 200
    yield estate


def outcome(result: object, target: str = "app-a") -> dict:
    records = [r for r in result.structured("ReconcileTargetOutcome") if r["target"] == target]  # type: ignore[attr-defined]
    assert len(records) == 1, records
    return records[0]


def test_a_tick_catches_up_a_lost_event(pushed: Estate) -> None:
    scenario = pushed.scenario
    scenario.rotate("token-a")  # no event arrives
    result = pushed.host.timer()
    assert result.succeeded, result.exception_message
    assert scenario.job_token("app-a") == scenario.current_token("token-a")
    assert outcome(result)["action"] == "synced"
    summary = result.structured("ReconcileRunOutcome")
    assert len(summary) == 1 and summary[0]["synced"] == 1


def test_a_tick_on_an_up_to_date_target_checks_the_saved_credentials_and_pushes_nothing(pushed: Estate) -> None:
    graph = pushed.scenario.stack.graph
    puts = graph.hop_count("put_secrets")
    result = pushed.host.timer()
    assert result.succeeded, result.exception_message
    assert outcome(result)["action"] == "unchanged"
    assert graph.hop_count("put_secrets") == puts
    assert graph.records("validate")[-1].body["useSavedCredentials"] is True


def test_a_token_replaced_by_hand_gets_key_vaults_value_back(pushed: Estate) -> None:
    setup = pushed.scenario.targets["app-a"]
    pushed.scenario.stack.graph.set_stored_secrets(
        setup.service_principal_id, {"BaseAddress": setup.base_address, "SecretToken": "pasted-by-hand"}
    )
    result = pushed.host.timer()
    assert result.succeeded
    assert pushed.scenario.job_token("app-a") == pushed.scenario.current_token("token-a")
    assert "saved credentials no longer validate" in outcome(result)["reason"]


def test_an_expiring_secret_is_reported_once_a_day(estate: Estate) -> None:
    estate.scenario.add_target("app-a", secret_name="token-a")
    estate.scenario.rotate("token-a", expires=datetime.now(timezone.utc) + timedelta(days=5))
    estate.configure()
    first = estate.host.timer()
    second = estate.host.timer()
    assert first.succeeded and second.succeeded
    near = [r for r in first.structured("SyncWarning") if r["code"] == "SecretNearExpiry"]
    assert len(near) == 1 and near[0]["target"] == "app-a"
    assert not [r for r in second.structured("SyncWarning") if r["code"] == "SecretNearExpiry"]


def test_a_retryable_failure_fails_the_invocation(pushed: Estate) -> None:
    pushed.scenario.rotate("token-a")
    pushed.scenario.stack.graph.inject("validate", Fault.status(503), times=-1)
    result = pushed.host.timer()
    assert result.failed
    assert "app-a: GraphUnavailable" in result.exception_message


def test_a_permanent_failure_is_reported_and_the_invocation_succeeds(pushed: Estate) -> None:
    pushed.scenario.rotate("token-a", accept=False)  # a wrong token lands in Key Vault
    result = pushed.host.timer()
    assert result.succeeded
    record = outcome(result)
    assert (record["action"], record["errorCode"], record["_level"]) == ("failed", "CredentialsRejected", "Error")


def test_the_ledger_is_the_durable_one_in_the_worker(pushed: Estate, azurite: Azurite) -> None:
    from azure.storage.blob import BlobServiceClient

    container = pushed.host.environ["SYNC_LEDGER_CONTAINER"]
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(container)
    assert "targets/app-a.json" in [b.name for b in blobs.list_blobs()]
