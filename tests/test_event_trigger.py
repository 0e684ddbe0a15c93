"""The Event Grid trigger: Key Vault events in both schemas, and when it raises."""

from __future__ import annotations

import logging

import pytest

from shared.core.errors import RetryableSyncFailure
from standins import Fault
from tests.harness import Harness, cloud_event, epoch_in, event_grid_event, key_vault_event_data


def two_targets(harness: Harness) -> None:
    harness.scenario.add_target("app-a", secret_name="token-a")
    harness.scenario.add_target("app-b", secret_name="token-b")
    harness.configure()


def nothing_called(harness: Harness) -> bool:
    stack = harness.stack
    return not stack.keyvault.requests and not stack.graph.requests and not stack.identity.requests


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_new_version_syncs_only_the_targets_that_use_the_secret(harness: Harness, schema: str) -> None:
    two_targets(harness)
    version = harness.scenario.rotate("token-a")
    data = key_vault_event_data("token-a", version=version)
    event = (
        event_grid_event("SecretNewVersionCreated", data)
        if schema == "eventgrid"
        else cloud_event("SecretNewVersionCreated", data)
    )

    assert harness.fire(event) is None

    scenario = harness.scenario
    assert scenario.job_token("app-a") == scenario.current_token("token-a")
    assert harness.stack.graph.secret_history(scenario.targets["app-b"].service_principal_id) == []


def test_the_current_version_is_pushed_whatever_version_the_event_names(harness: Harness) -> None:
    two_targets(harness)
    stale = harness.scenario.rotate("token-a")
    harness.scenario.rotate("token-a")  # newer than the one the (late) event names

    assert (
        harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data("token-a", version=stale)))
        is None
    )

    assert harness.scenario.job_token("app-a") == harness.scenario.current_token("token-a")


@pytest.mark.parametrize(
    "data",
    [
        {"vaultName": "standin-kv", "objectName": "token-a", "objectType": "Secret"},
        {"VAULTNAME": "standin-kv", "OBJECTNAME": "token-a"},
        {"VaultName ": " standin-kv", "ObjectName ": " token-a ", "NBF": 1559081980, "EXP": None},
        {"VaultName": "STANDIN-KV", "ObjectName": "TOKEN-A"},
    ],
)
def test_event_data_keys_are_read_case_insensitively_with_spaces_stripped(
    harness: Harness, data: dict[str, object]
) -> None:
    two_targets(harness)
    assert harness.fire(event_grid_event("SecretNewVersionCreated", data)) is None
    assert harness.scenario.job_token("app-a") == harness.scenario.current_token("token-a")


@pytest.mark.parametrize("event_type", ["SecretNearExpiry", "SecretExpired"])
def test_expiry_events_warn_per_target_without_calling_anything(
    harness: Harness, caplog: pytest.LogCaptureFixture, event_type: str
) -> None:
    harness.scenario.add_target("app-a", secret_name="shared")
    harness.scenario.add_target("app-b", secret_name="shared")
    harness.configure()
    expiry = epoch_in(86400)

    assert harness.fire(event_grid_event(event_type, key_vault_event_data("shared", EXP=str(expiry)))) is None

    warnings = [r for r in caplog.records if getattr(r, "custom_dimensions", {}).get("code") == event_type]
    assert sorted(r.custom_dimensions["target"] for r in warnings) == ["app-a", "app-b"]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert all(r.custom_dimensions["expiresOn"] for r in warnings)  # type: ignore[attr-defined]
    assert all(r.custom_dimensions["jobId"] for r in warnings)  # type: ignore[attr-defined]
    assert nothing_called(harness)


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("Microsoft.KeyVault.KeyNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "token-a"}),
        ("Microsoft.KeyVault.VaultAccessPolicyChanged", {"VaultName": "standin-kv"}),
        ("SecretNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "unused-secret"}),
        ("SecretNewVersionCreated", {"VaultName": "other-kv", "ObjectName": "token-a"}),
    ],
)
def test_other_events_are_acknowledged_without_calls(harness: Harness, event_type: str, data: dict[str, str]) -> None:
    two_targets(harness)
    assert harness.fire(event_grid_event(event_type, data)) is None
    assert nothing_called(harness)


def test_a_retryable_failure_raises_so_the_event_is_delivered_again(harness: Harness) -> None:
    two_targets(harness)
    harness.stack.graph.inject("put_secrets", Fault.status(503, retry_after="0"), times=-1)

    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data("token-a")))

    assert isinstance(raised, RetryableSyncFailure)
    assert "app-a: GraphUnavailable" in str(raised)


def test_a_permanent_failure_is_logged_not_raised(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    two_targets(harness)
    harness.scenario.rotate("token-a", accept=False)

    assert harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data("token-a"))) is None

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(getattr(r, "custom_dimensions", {}).get("errorCode") == "CredentialsRejected" for r in errors)
    assert harness.stack.graph.hop_count("put_secrets") == 0


def test_an_invalid_config_raises(harness: Harness) -> None:
    harness.set_config('{"targets": 1}')
    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data("token-a")))
    assert isinstance(raised, RetryableSyncFailure)
    assert "ConfigInvalid" in str(raised)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "text",
        [1, 2],
        {"VaultName": "standin-kv"},
        {"VaultName": "x/../y", "ObjectName": "token-a"},
        {"VaultName": "standin-kv", "ObjectName": "a/b"},
        {"VaultName": 7, "ObjectName": ["token-a"]},
    ],
)
def test_a_malformed_event_is_logged_at_error_and_never_raised(
    harness: Harness, caplog: pytest.LogCaptureFixture, data: object
) -> None:
    two_targets(harness)
    assert harness.fire(event_grid_event("SecretNewVersionCreated", data)) is None
    assert any(
        r.levelno == logging.ERROR and getattr(r, "custom_dimensions", {}).get("errorCode") == "EventInvalid"
        for r in caplog.records
    )
    assert nothing_called(harness)
