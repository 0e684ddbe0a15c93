"""POST /api/sync: selection, status codes, and the same route as an Event Grid webhook."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from standins import Fault
from tests.harness import Harness, epoch_in, key_vault_event_data, webhook_event


def nothing_called(harness: Harness) -> bool:
    stack = harness.stack
    return not stack.keyvault.requests and not stack.graph.requests and not stack.identity.requests


def two_targets(harness: Harness) -> None:
    harness.scenario.add_target("app-a", secret_name="token-a")
    harness.scenario.add_target("app-b", secret_name="token-b")
    harness.configure()


def test_no_selection_syncs_every_target(harness: Harness) -> None:
    two_targets(harness)
    for body in (None, {}):
        result = harness.post(body)
        assert result.status == 200, result.text
        assert [r["target"] for r in result.body["results"]] == ["app-a", "app-b"]


def test_select_by_target_name(harness: Harness) -> None:
    two_targets(harness)
    result = harness.post({"targets": ["app-b"]})
    assert result.status == 200
    assert [r["target"] for r in result.body["results"]] == ["app-b"]
    assert harness.stack.graph.hop_count("put_secrets") == 1


def test_select_by_secret_name_case_insensitively(harness: Harness) -> None:
    two_targets(harness)
    result = harness.post({"secrets": ["TOKEN-A"]})
    assert result.status == 200
    assert [r["target"] for r in result.body["results"]] == ["app-a"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"targets": ["app-a", "nope"]}, "UnknownTarget"),
        ({"secrets": ["no-such-secret"]}, "UnknownSecret"),
    ],
)
def test_unknown_names_are_404_and_nothing_runs(harness: Harness, body: dict[str, object], code: str) -> None:
    two_targets(harness)
    result = harness.post(body)
    assert result.status == 404
    assert result.body["error"]["code"] == code
    assert result.body["invocationId"]
    assert nothing_called(harness)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe",
        b'"a string"',
        b"42",
        json.dumps({"targets": ["app-a"], "secrets": ["token-a"]}).encode(),
        json.dumps({"targets": []}).encode(),
        json.dumps({"secrets": []}).encode(),
        json.dumps({"targets": "app-a"}).encode(),
        json.dumps({"targets": [1]}).encode(),
        json.dumps({"dryRun": "yes"}).encode(),
        json.dumps({"target": ["app-a"]}).encode(),
        json.dumps({"servicePrincipalId": "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"}).encode(),
        json.dumps([1, 2]).encode(),
        json.dumps([]).encode(),
    ],
)
def test_malformed_bodies_are_400_and_nothing_runs(harness: Harness, raw: bytes) -> None:
    two_targets(harness)
    result = harness.post(raw=raw)
    assert result.status == 400, result.text
    assert result.body["error"]["code"] == "RequestInvalid"
    assert nothing_called(harness)


def test_an_oversized_body_is_413(harness: Harness) -> None:
    two_targets(harness)
    result = harness.post(raw=b"{" + b" " * (1024 * 1024 + 1) + b"}")
    assert result.status == 413
    assert nothing_called(harness)


def test_an_invalid_config_is_500_listing_every_field(harness: Harness) -> None:
    harness.scenario.add_target("app-a")
    document = harness.scenario.config_document()
    document["targets"][0]["servicePrincipalId"] = "nope"
    document["concurrency"] = 1000
    harness.set_config(json.dumps(document))

    result = harness.post({})

    assert result.status == 500
    error = result.body["error"]
    assert error["code"] == "ConfigInvalid"
    assert any(p.startswith("targets[0].servicePrincipalId") for p in error["problems"])
    assert any(p.startswith("concurrency") for p in error["problems"])
    assert nothing_called(harness)


def test_the_invocation_id_is_in_every_response(harness: Harness) -> None:
    two_targets(harness)
    for result in (harness.post({}), harness.post({"targets": ["x"]}), harness.post(raw=b"[")):
        assert result.body["invocationId"] == result.invocation_id


# --- The same route as an Event Grid webhook -------------------------------------------------------


def test_event_grid_validation_handshake_needs_no_config(harness: Harness) -> None:
    handshake = [
        {
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
            "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            "subject": "",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-23T10:00:00Z",
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]
    result = harness.post(handshake, headers={"aeg-event-type": "SubscriptionValidation"})
    assert result.status == 200
    assert result.body == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_cloud_events_options_handshake(harness: Harness) -> None:
    result = harness.post(method="OPTIONS", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
    assert result.status == 200
    assert result.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert harness.post(method="OPTIONS", headers={}).status == 400


@pytest.mark.parametrize("cloud", [False, True])
def test_a_webhook_delivery_syncs_the_targets_that_use_the_secret(harness: Harness, cloud: bool) -> None:
    two_targets(harness)
    harness.scenario.rotate("token-a")
    body = webhook_event("SecretNewVersionCreated", key_vault_event_data("token-a"), cloud=cloud)

    result = harness.post([body] if not cloud else body)

    assert result.status == 200, result.text
    assert [r["target"] for r in result.body["results"]] == ["app-a"]
    assert result.body["events"][0]["outcome"] == "synced"
    assert harness.scenario.job_token("app-a") == harness.scenario.current_token("token-a")


def test_a_batch_syncs_each_target_once(harness: Harness) -> None:
    two_targets(harness)
    event = webhook_event("SecretNewVersionCreated", key_vault_event_data("token-a"))
    duplicate = dict(event)
    other = webhook_event("SecretNewVersionCreated", key_vault_event_data("token-b"))

    result = harness.post([event, duplicate, other])

    assert result.status == 200, result.text
    assert sorted(r["target"] for r in result.body["results"]) == ["app-a", "app-b"]
    assert harness.stack.graph.hop_count("put_secrets") == 2


def test_a_malformed_event_in_a_batch_is_acknowledged_and_listed(harness: Harness) -> None:
    two_targets(harness)
    good = webhook_event("SecretNewVersionCreated", key_vault_event_data("token-a"))
    bad = webhook_event("SecretNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "../../etc"})

    result = harness.post([good, bad])

    assert result.status == 200, result.text
    outcomes = [e["outcome"] for e in result.body["events"]]
    assert outcomes == ["synced", "failed"]
    assert result.body["events"][1]["error"]["code"] == "EventInvalid"


def test_webhook_retryable_failures_answer_503_permanent_ones_200(harness: Harness) -> None:
    two_targets(harness)
    event = webhook_event("SecretNewVersionCreated", key_vault_event_data("token-a"))
    harness.stack.graph.inject("validate", Fault.status(503, retry_after="0"), times=-1)
    assert harness.post([event]).status == 503

    harness.stack.graph.clear_faults()
    harness.scenario.rotate("token-a", accept=False)
    result = harness.post([event])
    assert result.status == 200  # failed permanently: Event Grid must not retry it
    assert result.body["events"][0]["outcome"] == "failed"
    assert result.result("app-a")["error"]["code"] == "CredentialsRejected"


def test_webhook_with_invalid_config_answers_503_so_event_grid_retries(harness: Harness) -> None:
    harness.set_config('{"keyVaults": []}')
    result = harness.post([webhook_event("SecretNewVersionCreated", key_vault_event_data("token-a"))])
    assert result.status == 503
    assert result.body["error"]["code"] == "ConfigInvalid"


def test_webhook_near_expiry_warns_without_calling_anything(harness: Harness) -> None:
    two_targets(harness)
    expiry = epoch_in(20 * 86400)
    result = harness.post([webhook_event("SecretNearExpiry", key_vault_event_data("token-b", EXP=str(expiry)))])
    assert result.status == 200, result.text
    warning = result.body["warnings"][0]
    assert warning["code"] == "SecretNearExpiry"
    assert warning["target"] == "app-b"
    assert warning["jobId"] == harness.scenario.targets["app-b"].job_id
    assert warning["expiresOn"] == datetime.fromtimestamp(expiry, timezone.utc).isoformat()
    assert result.body["results"] == []
    assert nothing_called(harness)
