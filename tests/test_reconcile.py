"""The reconcile timer heals what events missed, and the emergency pause stops every push.

Each case runs with the in-process ledger and with the durable one (Azurite), through the
decorated timer function as the host would call it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.core.errors import RetryableSyncFailure
from standins import Fault
from tests.harness import Harness, event_grid_event, key_vault_event_data, webhook_event


@pytest.fixture(params=["memory", "durable"])
def ledger(request: pytest.FixtureRequest, harness: Harness) -> str:
    if request.param == "durable":
        request.getfixturevalue("storage")
    return str(request.param)


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        fields = getattr(record, "custom_dimensions", None)
        if isinstance(fields, dict) and fields.get("event") == event:
            found.append(fields)
    return found


def outcome_of(caplog: pytest.LogCaptureFixture, target: str) -> dict[str, Any]:
    return [r for r in records(caplog, "ReconcileTargetOutcome") if r["target"] == target][-1]


def test_a_lost_event_is_caught_up(harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    version = harness.scenario.rotate(setup.secret_name)  # its event never arrives
    assert harness.tick() is None
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(setup.secret_name)
    outcome = outcome_of(caplog, "t1")
    assert outcome["action"] == "synced" and "missed" in outcome["reason"]
    assert outcome["keyVaultVersions"] == {"SecretToken": version}
    summary = records(caplog, "ReconcileRunOutcome")[-1]
    assert (summary["synced"], summary["unchanged"], summary["failed"]) == (1, 0, 0)


def test_an_up_to_date_target_is_checked_not_pushed(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    puts = len(harness.stack.graph.records("put_secrets"))
    assert harness.tick() is None
    assert len(harness.stack.graph.records("put_secrets")) == puts
    validations = harness.stack.graph.records("validate")
    assert validations[-1].body == {"useSavedCredentials": True, "templateId": "scim"}  # the saved ones, no values
    assert outcome_of(caplog, "t1")["action"] == "unchanged"


def test_a_target_added_to_the_config_is_synced(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    harness.scenario.add_target("t2")
    harness.configure()
    assert harness.tick() is None
    assert outcome_of(caplog, "t2")["action"] == "synced"
    assert "never pushed" in outcome_of(caplog, "t2")["reason"]
    assert outcome_of(caplog, "t1")["action"] == "unchanged"


def test_a_token_replaced_by_hand_gets_key_vaults_value_back(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    harness.stack.graph.set_stored_secrets(
        setup.service_principal_id, {"BaseAddress": setup.base_address, "SecretToken": "pasted-by-hand-1234"}
    )
    assert harness.tick() is None
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(setup.secret_name)
    outcome = outcome_of(caplog, "t1")
    assert outcome["action"] == "synced" and "saved credentials no longer validate" in outcome["reason"]


def test_a_revoked_token_is_reported_and_does_not_fail_the_run(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    harness.stack.graph.accept_credentials(setup.service_principal_id, {"SecretToken": "only-a-newer-token-works"})
    puts = len(harness.stack.graph.records("put_secrets"))
    assert harness.tick() is None  # permanent: reported, the invocation succeeds
    assert len(harness.stack.graph.records("put_secrets")) == puts  # Key Vault's value did not validate either
    outcome = outcome_of(caplog, "t1")
    assert outcome["action"] == "failed" and outcome["errorCode"] == "CredentialsRejected"


def test_a_quarantined_job_is_resumed_after_a_good_push(harness: Harness, ledger: str) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    graph = harness.stack.graph
    graph.set_job_status(setup.service_principal_id, setup.job_id, "Quarantine", "EncounteredQuarantineException")
    graph.set_stored_secrets(setup.service_principal_id, {"BaseAddress": setup.base_address, "SecretToken": "revoked"})
    assert harness.tick() is None
    assert graph.job_status(setup.service_principal_id, setup.job_id) == "Active"
    assert graph.start_calls(setup.service_principal_id, setup.job_id) == ["Quarantine"]


def test_a_quarantined_job_whose_credentials_validate_is_reported_not_started(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    graph = harness.stack.graph
    graph.set_job_status(setup.service_principal_id, setup.job_id, "Quarantine", "TooManyDeletes")
    assert harness.tick() is None
    assert graph.start_calls(setup.service_principal_id, setup.job_id) == []
    assert "JobQuarantined" in outcome_of(caplog, "t1")["warningCodes"]


def test_an_expiring_secret_is_reported_once_a_day(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.scenario.rotate(setup.secret_name, expires=datetime.now(timezone.utc) + timedelta(days=10))
    harness.scenario.add_target("t2")  # expires in a year: never reported
    harness.scenario.rotate("t2-token", expires=datetime.now(timezone.utc) + timedelta(days=365))
    harness.configure()
    assert harness.tick() is None
    assert harness.tick() is None
    warnings = [r for r in records(caplog, "SyncWarning") if r["code"] == "SecretNearExpiry"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["target"] == "t1" and warnings[0]["jobId"] == setup.job_id


def test_only_retryable_failures_fail_the_run(harness: Harness, ledger: str) -> None:
    harness.scenario.add_target("t1")
    harness.scenario.add_target("t2")
    harness.configure()
    harness.stack.graph.inject("validate", Fault.status(503), times=-1)
    raised = harness.tick()
    assert isinstance(raised, RetryableSyncFailure)
    assert "t1: GraphUnavailable" in str(raised) and "t2: GraphUnavailable" in str(raised)


def test_an_invalid_config_fails_the_run(harness: Harness) -> None:
    harness.set_config("{not json")
    assert isinstance(harness.tick(), RetryableSyncFailure)


# --- The emergency pause ---------------------------------------------------------------------------------


def pause(harness: Harness, on: bool = True) -> None:
    harness.monkeypatch.setenv("SYNC_PAUSED", "true" if on else "false")


def test_paused_nothing_is_pushed_and_everything_catches_up_after(
    harness: Harness, ledger: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("t1")
    harness.configure()
    pause(harness)
    version = harness.scenario.rotate(setup.secret_name)
    data = key_vault_event_data(setup.secret_name, version=version)
    graph_before = len(harness.stack.graph.requests)

    raised = harness.fire(event_grid_event("SecretNewVersionCreated", data))
    assert isinstance(raised, RetryableSyncFailure) and "SyncPaused" in str(raised)  # Event Grid delivers again
    webhook = harness.post([webhook_event("SecretNewVersionCreated", data)])
    assert webhook.status == 503 and webhook.body["error"]["code"] == "SyncPaused"
    manual = harness.post({"targets": ["t1"]})
    assert manual.status == 503 and manual.body["error"]["retryable"] is True
    assert harness.tick() is None  # the timer logs and skips
    assert len(harness.stack.graph.requests) == graph_before  # not one Graph call
    assert any(
        r["errorCode"] == "SyncPaused" and r["trigger"] == "timer" for r in records(caplog, "SyncInvocationError")
    )

    handshake = harness.post([{"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                               "data": {"validationCode": "abc"}}])  # fmt: skip
    assert handshake.status == 200 and handshake.body == {"validationResponse": "abc"}
    dry = harness.post({"dryRun": True})
    assert dry.status == 200 and dry.body["results"][0]["status"] == "validated"  # pushes nothing: allowed

    pause(harness, on=False)
    assert harness.tick() is None
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(setup.secret_name)


@pytest.mark.parametrize("value", ["TRUE", "1", "yes", " on "])
def test_the_pause_switch_reads_the_usual_spellings_of_true(harness: Harness, value: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    harness.monkeypatch.setenv("SYNC_PAUSED", value)
    assert harness.post({}).status == 503


def test_the_pause_switch_off_or_unset_syncs(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    harness.monkeypatch.setenv("SYNC_PAUSED", "false")
    assert harness.post({}).status == 200
    assert json.dumps(harness.post({}).body).count("pushed") == 1
