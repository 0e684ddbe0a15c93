"""The pause switch through Microsoft's worker library: a worker process started with ``SYNC_PAUSED=true``
(an app setting, so a process of its own, as after a settings change in Azure).

Which README statement each test backs: ``tests/conformance/statements.py`` (checked against README.md).
"""

from __future__ import annotations

import uuid

import pytest

from tests.conformance.conftest import WorkerFactory
from tests.conformance.deliveries import delivered
from tests.conformance.estate import Estate
from tests.conformance.host import FunctionsHost
from tests.harness import key_vault_event_data

NOTIFICATION = {"aeg-event-type": "Notification"}


@pytest.fixture(scope="module")
def worker(start_worker: WorkerFactory) -> FunctionsHost:
    return start_worker({"SYNC_PAUSED": "true"})


def one_target(estate: Estate) -> None:
    estate.scenario.add_target("app-a", secret_name="token-a")
    estate.configure()


def test_the_event_grid_trigger_fails_its_invocation_and_pushes_nothing(estate: Estate) -> None:
    one_target(estate)
    result = estate.fire(delivered("SecretNewVersionCreated", key_vault_event_data("token-a")))
    assert result.failed
    assert "SyncPaused" in result.exception_message
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 0


def test_the_webhook_answers_503_sync_paused(estate: Estate) -> None:
    one_target(estate)
    result = estate.post([delivered("SecretNewVersionCreated", key_vault_event_data("token-a"))], headers=NOTIFICATION)
    assert result.status == 503, result.body
    assert result.body["error"]["code"] == "SyncPaused"
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 0


def test_post_sync_answers_503_but_a_dry_run_still_answers(estate: Estate) -> None:
    one_target(estate)
    assert estate.post({}).status == 503
    dry = estate.post({"dryRun": True})
    assert dry.status == 200, dry.body
    assert dry.result("app-a")["status"] == "validated"
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 0


def test_handshakes_are_answered_as_always(estate: Estate) -> None:
    code = str(uuid.uuid4())
    handshake = [
        {
            "id": str(uuid.uuid4()),
            "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            "subject": "",
            "data": {"validationCode": code},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-23T10:00:00Z",
            "dataVersion": "2",
            "metadataVersion": "1",
        }
    ]
    assert estate.post(handshake, headers={"aeg-event-type": "SubscriptionValidation"}).body == {
        "validationResponse": code
    }
    options = estate.post(method="OPTIONS", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert (options.status, options.header("WebHook-Allowed-Origin")) == (200, "eventgrid.azure.net")


def test_the_timer_logs_and_skips(estate: Estate) -> None:
    one_target(estate)
    before = len(estate.scenario.stack.graph.requests)
    result = estate.host.timer()
    assert result.succeeded, result.exception_message
    assert [r["errorCode"] for r in result.structured("SyncInvocationError")] == ["SyncPaused"]
    assert len(estate.scenario.stack.graph.requests) == before
