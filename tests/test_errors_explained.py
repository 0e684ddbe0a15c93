"""Issue #3, item 3: permanent errors explain themselves.

Each case builds a real broken estate on the stand-ins (a missing permission, role, service principal,
job or secret; a disabled, expired or not-yet-valid current version; credentials the app rejects; a
token for the wrong cloud; an unknown user-assigned identity) and checks, over HTTP and through the
Event Grid trigger: the stable code, that it is not retryable (422; the trigger logs it at error level
and does not raise), that the message says what to do, and that nothing was pushed.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.core import errors
from standins import Fault
from standins.scenario import TargetSetup
from tests.harness import Harness, event_grid_event, key_vault_event_data


@dataclass(frozen=True)
class Case:
    code: str
    #: Phrases the message must contain: what is wrong and what to do about it.
    says: tuple[str, ...]
    #: Breaks the estate after one target "t1" was added; may return config overrides.
    arrange: Callable[[Harness, TargetSetup], dict[str, Any] | None]
    details: tuple[str, ...] = ()
    #: Whether the failure is Graph's answer to validateCredentials (the first Graph call with a configured
    #: jobId). Otherwise the target fails before anything is sent for validation. Never a push either way.
    validated: bool = False


def _no_graph_permission(h: Harness, t: TargetSetup) -> None:
    h.stack.identity.roles = []


def _owned_by_without_ownership(h: Harness, t: TargetSetup) -> None:
    h.stack.identity.roles = ["Application.ReadWrite.OwnedBy"]


def _no_key_vault_role(h: Harness, t: TargetSetup) -> None:
    h.stack.keyvault.forbid_all = True


def _missing_service_principal(h: Harness, t: TargetSetup) -> dict[str, Any]:
    doc = h.scenario.config_document()
    doc["targets"][0]["servicePrincipalId"] = str(uuid.uuid4())
    return doc


def _missing_job(h: Harness, t: TargetSetup) -> dict[str, Any]:
    doc = h.scenario.config_document()
    doc["targets"][0]["jobId"] = f"scim.{uuid.uuid4().hex}.{t.service_principal_id}"
    return doc


def _no_job_to_discover(h: Harness, t: TargetSetup) -> dict[str, Any]:
    sp = str(uuid.uuid4())
    h.stack.graph.add_service_principal(sp)
    doc = h.scenario.config_document()
    doc["targets"][0]["servicePrincipalId"] = sp
    del doc["targets"][0]["jobId"]
    return doc


def _two_jobs(h: Harness, t: TargetSetup) -> dict[str, Any]:
    h.stack.graph.add_job(t.service_principal_id, template_id="scim")
    doc = h.scenario.config_document()
    del doc["targets"][0]["jobId"]
    return doc


def _missing_secret(h: Harness, t: TargetSetup) -> dict[str, Any]:
    doc = h.scenario.config_document()
    doc["targets"][0]["secrets"]["SecretToken"]["keyVaultSecret"] = "no-such-secret"
    return doc


def _disabled(h: Harness, t: TargetSetup) -> None:
    h.scenario.rotate(t.secret_name, enabled=False)


def _expired(h: Harness, t: TargetSetup) -> None:
    h.scenario.rotate(t.secret_name, expires=datetime.now(timezone.utc) - timedelta(hours=1))


def _not_yet_valid(h: Harness, t: TargetSetup) -> None:
    h.scenario.rotate(t.secret_name, not_before=datetime.now(timezone.utc) + timedelta(days=1))


def _rejected(h: Harness, t: TargetSetup) -> None:
    h.scenario.rotate(t.secret_name, accept=False)


def _rejected_unknown_error(h: Harness, t: TargetSetup) -> None:
    body = {"error": {"code": "UnknownError", "message": "", "innerError": {"request-id": str(uuid.uuid4())}}}
    h.stack.graph.inject("validate", Fault.status(400, body=body), times=-1)


def _wrong_cloud_token(h: Harness, t: TargetSetup) -> None:
    h.stack.graph.audience = "https://graph.microsoft.us"


def _unknown_user_assigned_identity(h: Harness, t: TargetSetup) -> dict[str, Any]:
    return h.scenario.config_document(managedIdentityClientId=str(uuid.uuid4()))


GRAPH_PERMISSION = ("Synchronization.ReadWrite.All", "Application.ReadWrite.OwnedBy", "owner", "appRoleAssignments")

CASES: dict[str, Case] = {
    "graph-403-no-permission": Case(
        "GraphForbidden", (*GRAPH_PERMISSION, "portal cannot"), _no_graph_permission, validated=True
    ),
    "graph-403-owned-by-not-owner": Case(
        "GraphForbidden", GRAPH_PERMISSION, _owned_by_without_ownership, validated=True
    ),
    "key-vault-403": Case(
        "KeyVaultForbidden", ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"), _no_key_vault_role
    ),
    "service-principal-missing": Case(
        "ServicePrincipalNotFound", ("object id of the enterprise application", "not its app id"),
        _missing_service_principal, validated=True),
    "job-missing": Case("SyncJobNotFound", ("fix jobId", "omit"), _missing_job, validated=True),
    "no-job-to-discover": Case("SyncJobNotFound", ("set up provisioning",), _no_job_to_discover),
    "two-jobs-to-discover": Case("SyncJobAmbiguous", ("set jobId to one of",), _two_jobs, details=("jobIds",)),
    "secret-missing": Case(
        "KeyVaultSecretNotFound", ("no-such-secret", "does not exist", "create it", "fix keyVaultSecret"),
        _missing_secret,
    ),
    "latest-disabled": Case("KeyVaultSecretDisabled", ("disabled", "enable it or add a new version"), _disabled),
    "latest-expired": Case(
        "KeyVaultSecretExpired", ("expired at", "add a new version"), _expired, details=("expiresOn",)
    ),
    "latest-not-yet-valid": Case(
        "KeyVaultSecretNotYetValid", ("not valid before", "add a version that is valid now"), _not_yet_valid,
        details=("notBefore",),
    ),
    "credentials-rejected": Case(
        "CredentialsRejected",
        ("nothing was pushed", "rejected the credentials", "check the token and the tenant URL",
         "SystemForCrossDomainIdentityManagementCredentialValidationFailure"),
        _rejected, details=("graphErrorCode", "graphInnerCode", "graphRequestId"), validated=True,
    ),
    "credentials-rejected-unknown-error": Case(
        "CredentialsRejected", ("nothing was pushed",), _rejected_unknown_error,
        details=("graphErrorCode", "graphRequestId"), validated=True,
    ),
    "graph-401-wrong-cloud": Case("GraphUnauthorized", ("cloud", "graph.endpoint"), _wrong_cloud_token, validated=True),
    "unknown-user-assigned-identity": Case(
        "ManagedIdentityFailed", ("managedIdentityClientId", "user-assigned"), _unknown_user_assigned_identity
    ),
}  # fmt: skip


def arrange(harness: Harness, case: Case) -> TargetSetup:
    target = harness.scenario.add_target("t1")
    overrides = case.arrange(harness, target)
    if overrides is None:
        harness.configure()
    else:
        harness.set_config(json.dumps(overrides))
    return target


def assert_nothing_pushed(harness: Harness, case: Case) -> None:
    graph = harness.stack.graph
    assert not graph.records("put_secrets"), "a failed target pushed something"
    if not case.validated:
        assert not graph.records("validate"), "credentials that cannot be used were sent for validation"


@pytest.mark.parametrize("name", list(CASES))
def test_over_http_the_error_says_what_to_do(harness: Harness, name: str) -> None:
    case = CASES[name]
    arrange(harness, case)
    result = harness.post({})
    assert result.status == 422, result.text
    assert result.body["status"] == "failed"
    error = result.result("t1")["error"]
    assert (error["code"], error["retryable"]) == (case.code, False)
    for phrase in case.says:
        assert phrase in error["message"], f"{case.code} should say {phrase!r}: {error['message']}"
    for key in case.details:
        assert error.get(key), f"{case.code} should carry {key}"
    assert_nothing_pushed(harness, case)


@pytest.mark.parametrize("name", list(CASES))
def test_the_event_trigger_logs_it_and_does_not_raise(
    harness: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = CASES[name]
    arrange(harness, case)
    configured = json.loads(os.environ["SYNC_CONFIG"])["targets"][0]["secrets"]["SecretToken"]["keyVaultSecret"]
    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data(configured)))
    assert raised is None, "retrying cannot help a permanent failure: the event is acknowledged"
    outcomes = [r for r in caplog.records if getattr(r, "custom_dimensions", {}).get("event") == "TargetSyncOutcome"]
    assert len(outcomes) == 1
    fields = outcomes[0].custom_dimensions  # type: ignore[attr-defined]
    assert (fields["errorCode"], fields["retryable"], outcomes[0].levelno) == (case.code, False, logging.ERROR)
    assert all(phrase in fields["errorMessage"] for phrase in case.says)
    assert_nothing_pushed(harness, case)


def test_an_expired_secret_is_never_pushed_even_when_the_app_would_accept_it(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    # accepted by the app, but expired
    harness.scenario.rotate(target.secret_name, expires=datetime.now(timezone.utc) - timedelta(seconds=1))
    harness.configure()
    before = harness.scenario.job_token("t1")
    for _ in range(2):
        assert harness.post({}).status == 422
        assert harness.post({"dryRun": True}).status == 422
    assert harness.scenario.job_token("t1") == before
    assert not harness.stack.graph.records("validate") and not harness.stack.graph.records("put_secrets")


def test_every_case_has_a_stable_code_in_the_one_hierarchy() -> None:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.SyncError) and cls is not errors.SyncError
    }
    assert {case.code for case in CASES.values()} <= codes
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.TargetFailure) and not cls.retryable:
            assert cls.http_status == 422, cls.__name__
