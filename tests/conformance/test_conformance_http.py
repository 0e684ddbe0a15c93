"""The HTTP function ``sync`` (``POST /api/sync``, function key) through Microsoft's worker library.

Each request is converted as the host converts it for this library (body as raw bytes and only when not empty,
lower-cased header names, the query with the function key in ``code``), and every status code, header and JSON
body below is read back from the ``InvocationResponse``'s ``return_value`` — what the host turns into the HTTP
response.

Which README statement each test backs: ``tests/conformance/statements.py`` (checked against README.md).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from standins import Fault
from tests.conformance.deliveries import delivered
from tests.conformance.estate import Estate
from tests.conformance.host import HttpResult
from tests.harness import key_vault_event_data

NOTIFICATION = {"aeg-event-type": "Notification"}  # what Event Grid sends with a delivery (no content type needed)


def nothing_called(estate: Estate) -> bool:
    stack = estate.scenario.stack
    return not stack.keyvault.requests and not stack.graph.requests and not stack.identity.requests


def two_targets(estate: Estate) -> None:
    estate.scenario.add_target("app-a", secret_name="token-a")
    estate.scenario.add_target("app-b", secret_name="token-b")
    estate.configure()


def is_json_with_invocation_id(result: HttpResult) -> None:
    assert result.header("content-type") == "application/json"
    assert result.header("x-invocation-id") == result.invocation_id


def test_a_sync_pushes_and_answers_the_documented_json(estate: Estate) -> None:
    scenario = estate.scenario
    target = scenario.add_target("contoso-scim", secret_name="contoso-token")
    estate.configure()
    version = scenario.rotate("contoso-token")

    result = estate.post({"targets": ["contoso-scim"]})

    assert result.succeeded, result.exception_message
    assert result.status == 200, result.body
    is_json_with_invocation_id(result)
    body = result.body
    assert body["invocationId"] == result.invocation_id
    assert body["status"] == "succeeded"
    assert body["dryRun"] is False
    assert body["results"] == [
        {
            "target": "contoso-scim",
            "status": "pushed",
            "servicePrincipalId": target.service_principal_id,
            "jobId": target.job_id,
            "versions": {"SecretToken": version},
            "jobStarted": False,
        }
    ]
    assert scenario.job_token("contoso-scim") == scenario.current_token("contoso-token")


def test_no_selection_syncs_every_target(estate: Estate) -> None:
    two_targets(estate)
    for result in (estate.post(None), estate.post({})):  # no body at all (the host sends none), and {}
        assert result.status == 200, result.body
        assert [r["target"] for r in result.body["results"]] == ["app-a", "app-b"]


def test_selection_by_target_and_by_secret(estate: Estate) -> None:
    two_targets(estate)
    by_target = estate.post({"targets": ["app-b"]})
    by_secret = estate.post({"secrets": ["TOKEN-A"]})
    assert [r["target"] for r in by_target.body["results"]] == ["app-b"]
    assert [r["target"] for r in by_secret.body["results"]] == ["app-a"]


def test_a_dry_run_validates_and_pushes_nothing(estate: Estate) -> None:
    scenario = estate.scenario
    target = scenario.add_target("app-a", secret_name="token-a", job_status="Quarantine")
    estate.configure()
    before = scenario.job_token("app-a")

    result = estate.post({"dryRun": True})

    assert result.status == 200, result.body
    assert result.body["dryRun"] is True
    assert result.result("app-a")["status"] == "validated"
    graph = scenario.stack.graph
    assert graph.validations(target.service_principal_id) == [True]
    assert graph.hop_count("put_secrets") == 0
    assert graph.hop_count("start") == 0
    assert scenario.job_token("app-a") == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe",
        json.dumps({"targets": ["app-a"], "secrets": ["token-a"]}).encode(),
        json.dumps({"targets": []}).encode(),
        json.dumps({"targets": "app-a"}).encode(),
        json.dumps({"dryRun": "yes"}).encode(),
        json.dumps({"target": ["app-a"]}).encode(),
        json.dumps({"servicePrincipalId": "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"}).encode(),
    ],
    ids=["not-json", "not-utf8", "both", "empty-list", "wrong-type", "dryrun-string", "unknown-field", "sp-id"],
)
def test_malformed_bodies_are_400_and_nothing_runs(estate: Estate, raw: bytes) -> None:
    two_targets(estate)
    result = estate.post(raw=raw)
    assert result.succeeded, result.exception_message
    assert result.status == 400, result.body
    is_json_with_invocation_id(result)
    assert result.body["error"]["code"] == "RequestInvalid"
    assert nothing_called(estate)


@pytest.mark.parametrize(
    ("body", "code"),
    [({"targets": ["app-a", "nope"]}, "UnknownTarget"), ({"secrets": ["no-such-secret"]}, "UnknownSecret")],
)
def test_unknown_names_are_404_and_nothing_runs(estate: Estate, body: dict[str, Any], code: str) -> None:
    two_targets(estate)
    result = estate.post(body)
    assert result.status == 404, result.body
    assert result.body["error"]["code"] == code
    assert result.body["invocationId"] == result.invocation_id
    assert nothing_called(estate)


def test_a_body_over_one_mebibyte_is_413(estate: Estate) -> None:
    two_targets(estate)
    result = estate.post(raw=b"{" + b" " * (1024 * 1024 + 1) + b"}")
    assert result.status == 413, result.body
    assert result.body["error"]["code"] == "RequestTooLarge"
    assert nothing_called(estate)


def test_a_permanent_target_failure_is_422(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.rotate("token-a", accept=False)
    result = estate.post({"targets": ["app-a"]})
    assert result.status == 422, result.body
    error = result.result("app-a")["error"]
    assert (error["code"], error["retryable"]) == ("CredentialsRejected", False)
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 0


def test_a_retryable_target_failure_is_503(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.stack.graph.inject("validate", Fault.status(503, retry_after="0"), times=-1)
    result = estate.post({"targets": ["app-a"]})
    assert result.succeeded, result.exception_message  # the function answered; the answer is 503
    assert result.status == 503, result.body
    assert result.result("app-a")["error"]["code"] == "GraphUnavailable"


def test_an_invalid_config_is_500_listing_every_field(estate: Estate) -> None:
    estate.scenario.add_target("app-a")
    document = estate.scenario.config_document()
    document["targets"][0]["servicePrincipalId"] = "nope"
    document["concurrency"] = 1000
    estate.write_config(json.dumps(document))

    result = estate.post({})

    assert result.status == 500, result.body
    error = result.body["error"]
    assert error["code"] == "ConfigInvalid"
    assert any(p.startswith("targets[0].servicePrincipalId") for p in error["problems"])
    assert any(p.startswith("concurrency") for p in error["problems"])
    assert nothing_called(estate)


# --- the same route as an Event Grid webhook ------------------------------------------------------------


def test_an_event_grid_batch_syncs_each_target_once(estate: Estate) -> None:
    two_targets(estate)
    event = delivered("SecretNewVersionCreated", key_vault_event_data("token-a"))
    other = delivered("SecretNewVersionCreated", key_vault_event_data("token-b"))

    result = estate.post([event, dict(event), other], headers=NOTIFICATION)

    assert result.status == 200, result.body
    is_json_with_invocation_id(result)
    assert sorted(r["target"] for r in result.body["results"]) == ["app-a", "app-b"]
    assert [e["outcome"] for e in result.body["events"]] == ["synced", "synced", "synced"]
    assert estate.scenario.stack.graph.hop_count("put_secrets") == 2
    scenario = estate.scenario
    assert scenario.job_token("app-b") == scenario.current_token("token-b")


def test_a_malformed_event_in_a_batch_is_listed_and_acknowledged(estate: Estate) -> None:
    two_targets(estate)
    good = delivered("SecretNewVersionCreated", key_vault_event_data("token-a"))
    bad = delivered("SecretNewVersionCreated", {"VaultName": "standin-kv", "ObjectName": "../../etc"})

    result = estate.post([good, bad], headers=NOTIFICATION)

    assert result.status == 200, result.body
    assert [e["outcome"] for e in result.body["events"]] == ["synced", "failed"]
    assert result.body["events"][1]["error"]["code"] == "EventInvalid"


def test_a_cloud_event_delivery_syncs(estate: Estate) -> None:
    two_targets(estate)
    estate.scenario.rotate("token-a")

    result = estate.post(delivered("SecretNewVersionCreated", key_vault_event_data("token-a"), schema="cloudevents"),
                         headers=NOTIFICATION)  # fmt: skip

    assert result.status == 200, result.body
    assert [r["target"] for r in result.body["results"]] == ["app-a"]
    assert estate.scenario.job_token("app-a") == estate.scenario.current_token("token-a")


def test_webhook_answers_503_for_retryable_and_200_for_permanent_failures(estate: Estate) -> None:
    two_targets(estate)
    graph = estate.scenario.stack.graph
    event = delivered("SecretNewVersionCreated", key_vault_event_data("token-a"))
    graph.inject("validate", Fault.status(503, retry_after="0"), times=-1)
    assert estate.post([event], headers=NOTIFICATION).status == 503

    graph.clear_faults()
    estate.scenario.rotate("token-a", accept=False)
    result = estate.post([event], headers=NOTIFICATION)
    assert result.status == 200, result.body  # failed permanently: Event Grid must not deliver it again
    assert result.body["events"][0]["outcome"] == "failed"
    assert result.result("app-a")["error"]["code"] == "CredentialsRejected"


def test_webhook_with_an_invalid_config_is_503(estate: Estate) -> None:
    estate.write_config('{"keyVaults": []}')
    result = estate.post([delivered("SecretNewVersionCreated", key_vault_event_data("token-a"))], headers=NOTIFICATION)
    assert result.status == 503, result.body
    assert result.body["error"]["code"] == "ConfigInvalid"


@pytest.mark.parametrize("batch", [[], [1, 2], ["event"]], ids=["empty", "numbers", "strings"])
def test_a_malformed_batch_is_400(estate: Estate, batch: list[Any]) -> None:
    two_targets(estate)
    result = estate.post(batch, headers=NOTIFICATION)
    assert result.status == 400, result.body
    assert result.body["error"]["code"] == "RequestInvalid"
    assert nothing_called(estate)


def test_the_event_grid_validation_handshake_needs_no_config(estate: Estate) -> None:
    estate.write_config("not a config")
    code = str(uuid.uuid4())
    handshake = [
        {
            "id": str(uuid.uuid4()),
            "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
            "subject": "",
            "data": {"validationCode": code, "validationUrl": "https://rp-eastus2.eventgrid.azure.net/validate"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-23T10:00:00Z",
            "metadataVersion": "1",
            "dataVersion": "2",
        }
    ]

    result = estate.post(handshake, headers={"aeg-event-type": "SubscriptionValidation"})

    assert result.status == 200, result.body
    assert result.body == {"validationResponse": code}
    assert result.header("x-invocation-id") == result.invocation_id
    assert nothing_called(estate)


def test_the_cloud_events_options_handshake(estate: Estate) -> None:
    estate.write_config("not a config")

    result = estate.post(method="OPTIONS", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})

    assert result.status == 200, result.body
    assert result.header("WebHook-Allowed-Origin") == "eventgrid.azure.net"
    assert estate.post(method="OPTIONS", headers={}).status == 400
    assert nothing_called(estate)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00" * 64,
        b"[" * 5000 + b"]" * 5000,
        b'{"targets": ["' + "\u00e9\u2028".encode() * 200 + b'"]}',
        b'{"targets": ["app-a"], "dryRun": 1e999}',
        b'[{"id": 1, "eventType": {}, "data": []}]',
        b'{"specversion": "1.0", "type": 7, "data": "x"}',
        b'{"specversion": "1.0"}',
        b"null",
    ],
    ids=["nul-bytes", "deep-nesting", "unicode-name", "huge-number", "odd-event", "odd-cloud-event", "bare-ce", "null"],
)
def test_no_input_produces_another_5xx(estate: Estate, raw: bytes) -> None:
    two_targets(estate)
    result = estate.post(raw=raw, headers={})
    assert result.succeeded, result.exception_message  # never an unhandled exception in the worker
    assert result.status < 500, result.body


CALLS = ("validate", "get_secrets", "put_secrets", "get_job", "start")


def calls_so_far(estate: Estate) -> dict[str, int]:
    stack = estate.scenario.stack
    return {
        "token": stack.identity.hop_count("token"),
        "secret": stack.keyvault.hop_count("secret"),
        "challenges": stack.keyvault.challenges_issued,
        **{hop: stack.graph.hop_count(hop) for hop in CALLS},
    }


@pytest.mark.parametrize("resume", [True, False], ids=["resumes-quarantine", "no-resume"])
def test_a_warm_invocation_makes_only_the_documented_calls(estate: Estate, resume: bool) -> None:
    estate.scenario.add_target("app-a", secret_name="token-a", resume_quarantined=resume)
    estate.configure()
    assert estate.post({"targets": ["app-a"]}).status == 200  # warms the worker: token, challenge, connections
    before = calls_so_far(estate)
    estate.scenario.rotate("token-a")

    assert estate.post({"targets": ["app-a"]}).status == 200

    after = calls_so_far(estate)
    made = {call: after[call] - before[call] for call in before}
    expected = {"token": 0, "secret": 1, "challenges": 0, "validate": 1, "get_secrets": 1, "put_secrets": 1}
    # "plus one job GET when quarantine resumption needs it"
    assert made == {**expected, "get_job": 1 if resume else 0, "start": 0}
