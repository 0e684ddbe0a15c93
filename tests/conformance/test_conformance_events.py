"""The Event Grid trigger ``keyvault_events`` through Microsoft's worker library, fed as the host feeds it.

Each event is the JSON object Event Grid delivered — an Event Grid schema event, or for a CloudEvents
subscription the CloudEvent itself — handed over as ``TypedData(json=...)`` with ``{"data": ...}`` as trigger
metadata (the Event Grid extension's binding data). What the host does with the answer is the extension's rule:
a failed invocation answers Event Grid 500 and the event is delivered again; a successful one answers 202.

Which README statement each test backs: ``tests/conformance/statements.py`` (checked against README.md).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from standins import Fault
from tests.conformance.deliveries import delivered
from tests.conformance.estate import Estate
from tests.conformance.host import InvocationResult
from tests.harness import epoch_in, key_vault_event_data


def nothing_called(estate: Estate) -> bool:
    stack = estate.scenario.stack
    return not stack.keyvault.requests and not stack.graph.requests and not stack.identity.requests


def two_targets(estate: Estate) -> None:
    estate.scenario.add_target("app-a", secret_name="token-a")
    estate.scenario.add_target("app-b", secret_name="token-b")
    estate.configure()


def error_codes(result: InvocationResult) -> set[str]:
    return {r.get("errorCode") for r in result.structured() if r["_level"] == "Error"} - {None}


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_a_new_version_event_rotates_the_job(estate: Estate, schema: str) -> None:
    scenario, graph = estate.scenario, estate.scenario.stack.graph
    target = scenario.add_target(
        "contoso-scim",
        secret_name="contoso-token",
        job_status="Quarantine",
        quarantine_reason="EncounteredQuarantineException",
        stored_extra={"SyncNotificationSettings": '{"Enabled":false}'},
    )
    estate.configure()
    stale = scenario.rotate("contoso-token")
    current = scenario.rotate("contoso-token")  # newer than the version the (late) event names
    event = delivered("SecretNewVersionCreated", key_vault_event_data("contoso-token", version=stale), schema=schema,
                      subject="contoso-token")  # fmt: skip

    result = estate.fire(event)

    assert result.succeeded, result.exception_message
    stored = graph.stored_secrets(target.service_principal_id)
    assert stored["SecretToken"] == scenario.current_token("contoso-token")
    assert stored["SyncNotificationSettings"] == '{"Enabled":false}'
    assert graph.validations(target.service_principal_id) == [True]
    assert graph.job_status(target.service_principal_id, target.job_id) == "Active"
    assert len(graph.start_calls(target.service_principal_id, target.job_id)) == 1
    # One record per target, per event and per invocation, each carrying the host's invocation id.
    (outcome,) = result.structured("TargetSyncOutcome")
    assert outcome["outcome"] == "pushed"
    assert outcome["keyVaultVersions"] == {"SecretToken": current}
    assert outcome["jobStarted"] is True
    assert [r["outcome"] for r in result.structured("KeyVaultEventOutcome")] == ["synced"]
    assert len(result.structured("SyncInvocationOutcome")) == 1
    assert {r["invocationId"] for r in result.structured()} == {result.invocation_id}


def test_only_the_targets_that_use_the_secret_are_synced(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.rotate("token-a")

    result = estate.fire(delivered("SecretNewVersionCreated", key_vault_event_data("token-a")))

    assert result.succeeded, result.exception_message
    scenario = estate.scenario
    assert scenario.job_token("app-a") == scenario.current_token("token-a")
    assert scenario.stack.graph.secret_history(scenario.targets["app-b"].service_principal_id) == []


def test_data_keys_are_read_case_insensitively_with_spaces_stripped(estate: Estate) -> None:
    two_targets(estate)
    camel = {"vaultName": "standin-kv", "objectName": "token-a"}
    spaced = {"VaultName ": " STANDIN-KV", "ObjectName ": " token-b "}  # Microsoft's sample has "ObjectName "
    for data in (camel, spaced):
        assert estate.fire(delivered("SecretNewVersionCreated", data)).succeeded
    scenario = estate.scenario
    assert scenario.job_token("app-a") == scenario.current_token("token-a")
    assert scenario.job_token("app-b") == scenario.current_token("token-b")


@pytest.mark.parametrize("event_type", ["SecretNearExpiry", "SecretExpired"])
def test_expiry_events_warn_per_target_without_calls(estate: Estate, event_type: str) -> None:
    estate.scenario.add_target("app-a", secret_name="shared-token")
    estate.scenario.add_target("app-b", secret_name="shared-token")
    estate.configure()
    expiry = epoch_in(86400)

    result = estate.fire(delivered(event_type, key_vault_event_data("shared-token", EXP=expiry)))

    assert result.succeeded, result.exception_message
    warnings = [r for r in result.structured("SyncWarning") if r["code"] == event_type]
    assert sorted(w["target"] for w in warnings) == ["app-a", "app-b"]
    assert {w["_level"] for w in warnings} == {"Warning"}
    assert {w["jobId"] for w in warnings} == {t.job_id for t in estate.scenario.targets.values()}
    assert {w["expiresOn"] for w in warnings} == {datetime.fromtimestamp(expiry, timezone.utc).isoformat()}
    assert nothing_called(estate)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("Microsoft.KeyVault.KeyNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "token-a"}),
        ("SecretNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "unused-secret"}),
        ("SecretNewVersionCreated", {"VaultName": "other-kv", "ObjectName": "token-a"}),
    ],
)
def test_other_events_are_acknowledged_at_debug_without_calls(
    estate: Estate, event_type: str, data: dict[str, str]
) -> None:
    two_targets(estate)

    result = estate.fire(delivered(event_type, data))

    assert result.succeeded, result.exception_message
    assert [(r["outcome"], r["_level"]) for r in result.structured("KeyVaultEventOutcome")] == [("ignored", "Debug")]
    assert nothing_called(estate)


def test_a_retryable_failure_is_a_failed_invocation(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.stack.graph.inject("put_secrets", Fault.status(503, retry_after="0"), times=-1)

    result = estate.fire(delivered("SecretNewVersionCreated", key_vault_event_data("token-a")))

    assert result.failed
    assert "RetryableSyncFailure" in result.exception_message
    assert "app-a: GraphUnavailable" in result.exception_message


def test_an_invalid_config_is_a_failed_invocation(estate: Estate) -> None:
    estate.write_config('{"targets": 1}')

    result = estate.fire(delivered("SecretNewVersionCreated", key_vault_event_data("token-a")))

    assert result.failed
    assert "ConfigInvalid" in result.exception_message
    assert nothing_called(estate)


def test_a_permanent_failure_is_a_successful_invocation_logged_at_error(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.rotate("token-a", accept=False)  # a token the SCIM application does not accept

    result = estate.fire(delivered("SecretNewVersionCreated", key_vault_event_data("token-a")))

    assert result.succeeded, result.exception_message
    assert "CredentialsRejected" in error_codes(result)
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 0


@pytest.mark.parametrize(
    "data",
    [None, "text", {"VaultName": "standin-kv"}, {"VaultName": "x/../y", "ObjectName": "token-a"}],
    ids=["no-data", "string-data", "no-secret-name", "impossible-vault-name"],
)
def test_a_malformed_event_is_acknowledged_and_logged_at_error(estate: Estate, data: Any) -> None:
    two_targets(estate)

    result = estate.fire(delivered("SecretNewVersionCreated", data))

    assert result.succeeded, result.exception_message
    assert "EventInvalid" in error_codes(result)
    assert nothing_called(estate)
