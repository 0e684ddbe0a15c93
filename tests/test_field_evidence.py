"""Issue #11, points 1-6: what real Graph, Key Vault and the managed-identity endpoint do that the stand-ins
did not (failure classes, transient answers, bodies that are not JSON, PUT semantics, empty values).

Every case runs end to end through the function app against the stand-ins, under both readings of
``PUT .../synchronization/secrets`` (merge, per the evidence, and replace), and the harness's canary check
covers every response and log record. The evidence: the provisioning service's failure classes as vendors'
KB articles quote them; Graph's documented transient 409; azure-sdk-for-net #30467 (the identity endpoint's
empty 403); Key Vault's 403 bodies as public reports quote them; terraform-provider-azuread (PUT with empty
values deletes keys; a GET 404 read as "gone"); msgraph-metadata #347.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.core.errors import RetryableSyncFailure
from standins import Fault
from standins.graph import VALIDATION_CODE_PLACEMENTS
from standins.scenario import TargetSetup
from tests.harness import Harness, event_grid_event, key_vault_event_data
from tests.put_modes import graph_put_mode, pytest_generate_tests  # noqa: F401 - both PUT readings

HTML = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def one_target(harness: Harness, **kwargs: Any) -> TargetSetup:
    target = harness.scenario.add_target("t1", **kwargs)
    harness.configure()
    return target


def error_of(result: Any, target: str = "t1") -> dict[str, Any]:
    return result.result(target)["error"]


def assert_nothing_pushed(harness: Harness) -> None:
    assert harness.stack.graph.hop_count("put_secrets") == 0


def assert_no_credential_sent(harness: Harness) -> None:
    """Neither validated nor pushed: no value reached Graph (reads the pipeline does ahead of time may)."""
    graph = harness.stack.graph
    assert graph.hop_count("validate") == 0 and graph.hop_count("put_secrets") == 0 and graph.hop_count("start") == 0


# --- 1. validateCredentials: two failure classes ---------------------------------------------------------------


@pytest.mark.parametrize("placement", VALIDATION_CODE_PLACEMENTS)
def test_wrong_credentials_are_rejected_permanently_wherever_graph_puts_the_code(
    harness: Harness, placement: str
) -> None:
    target = one_target(harness)
    harness.stack.graph.validation_code_placement = placement
    harness.scenario.rotate(target.secret_name, accept=False)  # the target application answers 401

    result = harness.post({})

    assert result.status == 422, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"], error["reason"]) == ("CredentialsRejected", False, "rejected")
    assert "rejected the credentials" in error["message"]
    assert_nothing_pushed(harness)


@pytest.mark.parametrize("placement", VALIDATION_CODE_PLACEMENTS)
def test_an_unreachable_target_application_is_retryable_and_says_where_to_look(
    harness: Harness, placement: str
) -> None:
    target = one_target(harness)
    graph = harness.stack.graph
    graph.validation_code_placement = placement
    graph.set_target_unreachable(target.service_principal_id)
    before = harness.scenario.job_token("t1")

    result = harness.post({})

    assert result.status == 503, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"], error["reason"]) == ("TargetApplicationUnreachable", True, "unreachable")
    for phrase in ("BaseAddress", "firewall", "status", "nothing was pushed"):
        assert phrase in error["message"], phrase
    assert_nothing_pushed(harness)
    assert harness.scenario.job_token("t1") == before
    assert graph.hop_count("validate") == 1, "a target outage is retried later, not hammered now"

    graph.set_target_unreachable(target.service_principal_id, False)  # the SCIM endpoint is back
    again = harness.post({})
    assert again.status == 200, again.text
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(target.secret_name)


def test_the_event_trigger_asks_for_redelivery_while_the_target_is_unreachable(harness: Harness) -> None:
    target = one_target(harness)
    harness.stack.graph.set_target_unreachable(target.service_principal_id)
    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data(target.secret_name)))
    assert isinstance(raised, RetryableSyncFailure)
    assert "TargetApplicationUnreachable" in str(raised)
    assert_nothing_pushed(harness)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(400, body={"error": {"code": "UnknownError", "message": ""}}),
        Fault.status(400, body={"error": {"code": "BadRequest", "message": '{"code":"InvalidNotificationSettings"}'}}),
        Fault.status(400, raw_body=HTML, content_type="text/html"),
        Fault.status(400, raw_body=b""),
        Fault.status(409, body={"error": {"code": "Conflict", "message": "no"}}),
    ],
    ids=["unknown-error", "other-nested-code", "html", "empty", "other-409"],
)
def test_any_other_answer_means_not_validated_and_never_pushed(harness: Harness, fault: Fault) -> None:
    one_target(harness)
    harness.stack.graph.inject("validate", fault, times=-1)

    result = harness.post({})

    assert result.status == 422, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"], error["reason"]) == ("CredentialsRejected", False, "notValidated")
    assert "nothing was pushed" in error["message"]
    assert_nothing_pushed(harness)


# --- 2. Graph 409 Directory_ConcurrencyViolation is transient ------------------------------------------------------

CONCURRENCY = {
    "error": {
        "code": "Directory_ConcurrencyViolation",
        "message": "Another update to the object is in progress. Repeat the request after a short delay.",
    }
}


@pytest.mark.parametrize("hop", ["validate", "get_secrets", "put_secrets"])
def test_a_concurrency_violation_is_retried_with_backoff(harness: Harness, hop: str) -> None:
    target = one_target(harness)
    harness.stack.graph.inject(hop, Fault.status(409, body=CONCURRENCY), times=2)

    result = harness.post({})

    assert result.status == 200, result.text
    assert harness.stack.graph.hop_count(hop) == 3
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(target.secret_name)


def test_a_concurrency_violation_that_persists_is_retryable_and_other_409s_are_not_retried(harness: Harness) -> None:
    one_target(harness)
    graph = harness.stack.graph
    graph.inject("put_secrets", Fault.status(409, body=CONCURRENCY), times=-1)
    result = harness.post({})
    assert result.status == 503, result.text
    error = error_of(result)
    assert (error["code"], error["graphErrorCode"]) == ("GraphUnavailable", "Directory_ConcurrencyViolation")
    assert graph.hop_count("put_secrets") == 4  # SYNC_RETRY_MAX_ATTEMPTS' default

    graph.reset()
    harness.scenario.targets.clear()
    one_target(harness)
    graph.inject("put_secrets", Fault.status(409, body={"error": {"code": "Conflict", "message": "x"}}), times=-1)
    result = harness.post({})
    assert result.status == 422, result.text
    assert error_of(result)["code"] == "GraphRequestFailed"
    assert graph.hop_count("put_secrets") == 1


# --- 3. the managed-identity endpoint's transient 403 -------------------------------------------------------------


def test_a_403_with_an_empty_body_from_the_identity_endpoint_is_retried(harness: Harness) -> None:
    target = one_target(harness)
    identity = harness.stack.identity
    identity.inject("token", Fault.status(403, raw_body=b""), times=2)  # right after a deployment

    result = harness.post({})

    assert result.status == 200, result.text
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(target.secret_name)
    assert [r.status for r in identity.requests][:3] == [403, 403, 200]


def test_a_403_with_an_empty_body_that_persists_is_permanent_after_a_bounded_number_of_attempts(
    harness: Harness,
) -> None:
    one_target(harness)
    identity = harness.stack.identity
    identity.inject("token", Fault.status(403, raw_body=b""), times=-1)

    result = harness.post({})

    assert result.status == 422, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"]) == ("ManagedIdentityFailed", False)
    assert "403 with an empty body" in error["message"] and "restart" in error["message"]
    attempts = [r for r in identity.requests if r.status == 403]
    assert 4 <= len(attempts) <= 8  # 4 attempts per token request (Key Vault's, and Graph's if it got that far)
    assert_nothing_pushed(harness)


def test_a_403_with_a_body_is_not_retried(harness: Harness) -> None:
    one_target(harness)
    identity = harness.stack.identity
    body = {"statusCode": 403, "message": "The identity is not allowed.", "correlationId": str(uuid.uuid4())}
    identity.inject("token", Fault.status(403, body=body), times=-1)

    result = harness.post({})

    assert error_of(result)["code"] == "ManagedIdentityFailed"
    assert len([r for r in identity.requests if r.status == 403]) <= 2  # once per resource, never retried


# --- 4. Key Vault's 403s need different fixes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "reason", "says"),
    [
        ({"forbid_all": True}, "rbac", ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6", "RBAC")),
        ({"forbid_all": True, "permission_model": "accessPolicy"}, "accessPolicy", ("access policy", "'get'", "RBAC")),
        ({"network_denial": "privateLinkOnly"}, "network", ("network rules", "private endpoint", "firewall")),
        ({"network_denial": "firewall"}, "network", ("network rules", "firewall", "a role assignment does not help")),
    ],
    ids=["rbac", "access-policy", "private-link-only", "firewall"],
)
def test_each_key_vault_403_names_its_own_fix(
    harness: Harness, setting: dict[str, object], reason: str, says: tuple[str, ...]
) -> None:
    one_target(harness)
    for name, value in setting.items():
        setattr(harness.stack.keyvault, name, value)

    result = harness.post({})

    assert result.status == 422, result.text
    error = error_of(result)
    assert (error["code"], error["reason"]) == ("KeyVaultForbidden", reason)
    for phrase in says:
        assert phrase in error["message"], phrase
    if reason != "rbac":
        assert "assign it Key Vault Secrets User" not in error["message"]
    assert_no_credential_sent(harness)


def test_a_403_page_from_a_gateway_in_front_of_the_vault_lists_every_fix(harness: Harness) -> None:
    one_target(harness)
    harness.stack.keyvault.inject("secret", Fault.status(403, raw_body=HTML, content_type="text/html"), times=-1)
    result = harness.post({})
    error = error_of(result)
    assert (error["code"], error["reason"]) == ("KeyVaultForbidden", "unknown")
    for phrase in ("Key Vault Secrets User", "access policy", "network rules"):
        assert phrase in error["message"]


# --- 5. empty, non-JSON and HTML bodies; GET secrets 404 ----------------------------------------------------------


@pytest.mark.parametrize("body", [HTML, b"", b"upstream connect error"], ids=["html", "empty", "text"])
@pytest.mark.parametrize(
    ("service", "hop", "code"),
    [
        ("graph", "validate", "GraphUnavailable"),
        ("graph", "put_secrets", "GraphUnavailable"),
        ("keyvault", "secret", "KeyVaultUnavailable"),
        ("identity", "token", "ManagedIdentityUnavailable"),
    ],
)
def test_a_failing_gateway_page_is_a_retryable_outage_everywhere(
    harness: Harness, service: str, hop: str, code: str, body: bytes
) -> None:
    one_target(harness)
    server = getattr(harness.stack, service)
    server.inject(hop, Fault.status(502, raw_body=body, content_type="text/html" if body else None), times=-1)

    result = harness.post({})

    assert result.status == 503, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"]) == (code, True)
    assert "<html>" not in result.text
    if hop != "put_secrets":
        assert_nothing_pushed(harness)


@pytest.mark.parametrize("body", [HTML, b""], ids=["html", "empty"])
@pytest.mark.parametrize(
    ("service", "hop", "code"),
    [("keyvault", "secret", "KeyVaultUnavailable"), ("identity", "token", "ManagedIdentityUnavailable")],
)
def test_a_200_that_is_not_json_from_key_vault_or_the_identity_endpoint_is_a_retryable_outage(
    harness: Harness, service: str, hop: str, code: str, body: bytes
) -> None:
    one_target(harness)
    getattr(harness.stack, service).inject(hop, Fault.status(200, raw_body=body, content_type="text/html"), times=-1)

    result = harness.post({})

    assert result.status == 503, result.text  # was: InternalError (Key Vault), ManagedIdentityFailed (identity)
    error = error_of(result)
    assert (error["code"], error["retryable"]) == (code, True)
    assert "gateway or proxy" in error["message"]
    assert_no_credential_sent(harness)


_UNREADABLE = {"html": HTML, "empty": b"", "no-value": b"{}", "null-value": b'{"value": null}', "list": b"[]"}
#: A job is one object: one without the usual fields is still Graph's shape, so only the non-objects apply to it.
_UNREADABLE_CASES = [
    pytest.param(hop, body, id=f"{name}-{hop}")
    for hop in ("list_jobs", "get_secrets", "get_job")
    for name, body in _UNREADABLE.items()
    if not (hop == "get_job" and body.startswith(b"{"))
]


@pytest.mark.parametrize(("hop", "body"), _UNREADABLE_CASES)
def test_a_read_answered_200_with_something_graph_never_sends_is_never_taken_as_empty(
    harness: Harness, hop: str, body: bytes
) -> None:
    target = one_target(
        harness,
        configured_job_id=hop != "list_jobs",
        job_status="Quarantine" if hop == "get_job" else "Active",
        stored_extra={"SyncNotificationSettings": '{"Enabled":false}'},
    )
    harness.stack.graph.inject(hop, Fault.status(200, raw_body=body, content_type="text/html"), times=-1)

    result = harness.post({})

    entry = result.result("t1")
    if hop == "get_job":  # after the push: the push stands, resuming the job is what failed
        assert entry["status"] == "pushed"
        assert entry["warnings"][0]["cause"] == "GraphAnswerUnreadable"
        return
    assert result.status == 503, result.text
    assert (entry["error"]["code"], entry["error"]["retryable"]) == ("GraphAnswerUnreadable", True)
    assert "gateway or proxy" in entry["error"]["message"]
    assert_nothing_pushed(harness)
    stored = harness.stack.graph.stored_secrets(target.service_principal_id)
    assert stored["SyncNotificationSettings"] == '{"Enabled":false}'


def test_get_secrets_404_while_nothing_is_stored_pushes_only_the_managed_keys(harness: Harness) -> None:
    target = one_target(harness)
    graph = harness.stack.graph
    graph.set_stored_secrets(target.service_principal_id, {})
    graph.not_found_when_empty = True

    result = harness.post({})

    assert result.status == 200, result.text
    assert graph.stored_secrets(target.service_principal_id) == {
        "BaseAddress": target.base_address,
        "SecretToken": harness.scenario.current_token(target.secret_name),
    }
    assert [r.status for r in graph.records("get_secrets")] == [404]


@pytest.mark.parametrize(
    "fault",
    [
        Fault.status(404, raw_body=HTML, content_type="text/html"),
        Fault.status(404, raw_body=b""),
    ],
    ids=["html", "empty"],
)
def test_get_secrets_404_without_graphs_error_body_is_never_read_as_nothing_stored(
    harness: Harness, fault: Fault
) -> None:
    target = one_target(harness, stored_extra={"SyncNotificationSettings": '{"Enabled":false}'})
    harness.stack.graph.inject("get_secrets", fault, times=-1)

    result = harness.post({})

    assert result.status == 503, result.text
    assert error_of(result)["code"] == "GraphAnswerUnreadable"
    assert_nothing_pushed(harness)
    assert "SyncNotificationSettings" in harness.stack.graph.stored_secrets(target.service_principal_id)


def test_get_secrets_404_naming_the_service_principal_is_service_principal_not_found(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure(validation="skip")
    sp = target.service_principal_id
    body = {"error": {"code": "Request_ResourceNotFound", "message": f"Resource '{sp}' does not exist."}}
    harness.stack.graph.inject("get_secrets", Fault.status(404, body=body), times=-1)

    result = harness.post({})

    assert result.status == 422, result.text
    assert error_of(result)["code"] == "ServicePrincipalNotFound"
    assert_nothing_pushed(harness)


# --- 6. PUT semantics and empty values -----------------------------------------------------------------------------


def test_unmanaged_keys_survive_a_push_under_either_reading_of_put(
    harness: Harness, request: pytest.FixtureRequest
) -> None:
    target = one_target(harness, stored_extra={"SyncNotificationSettings": '{"Enabled":false}', "SyncAll": "false"})
    assert harness.stack.graph.put_mode == request.getfixturevalue("graph_put_mode")
    assert harness.post({}).status == 200
    stored = harness.stack.graph.stored_secrets(target.service_principal_id)
    assert stored["SyncNotificationSettings"] == '{"Enabled":false}' and stored["SyncAll"] == "false"
    put = harness.stack.graph.records("put_secrets")[0].body["value"]
    assert all(pair["value"].strip() for pair in put), "an empty value would delete its key under merge"


@pytest.mark.parametrize("value", ["", " ", "\t\n  "], ids=["empty", "blank", "whitespace"])
def test_an_empty_key_vault_value_fails_its_target_before_anything_is_sent_to_graph(
    harness: Harness, value: str
) -> None:
    target = one_target(harness)
    good = harness.scenario.job_token("t1")
    harness.stack.keyvault.set_secret(target.secret_name, value)

    result = harness.post({})

    assert result.status == 422, result.text
    error = error_of(result)
    assert (error["code"], error["retryable"]) == ("KeyVaultSecretEmpty", False)
    assert "empty" in error["message"] and "add a new version" in error["message"]
    assert_no_credential_sent(harness)
    assert harness.scenario.job_token("t1") == good


def test_an_empty_value_fails_only_its_own_targets(harness: Harness) -> None:
    empty = harness.scenario.add_target("t1")
    fine = harness.scenario.add_target("t2")
    harness.configure()
    harness.stack.keyvault.set_secret(empty.secret_name, "")
    result = harness.post({})
    assert result.body["status"] == "partial"
    assert result.result("t1")["error"]["code"] == "KeyVaultSecretEmpty"
    assert harness.scenario.job_token("t2") == harness.scenario.current_token(fine.secret_name)
    assert json.dumps(result.body).count("KeyVaultSecretEmpty") == 1
