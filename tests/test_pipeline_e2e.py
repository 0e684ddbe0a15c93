"""One sync of a target, end to end through the HTTP function: resolve -> validate -> merge -> push -> resume."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from standins import Fault
from tests.harness import Harness
from tests.put_modes import graph_put_mode, pytest_generate_tests  # noqa: F401 - both PUT readings


def test_push_replaces_the_token_with_the_current_key_vault_version(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target("contoso-scim")
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    assert result.body["status"] == "succeeded"
    assert result.body["dryRun"] is False
    assert result.body["invocationId"] == result.invocation_id == result.headers["x-invocation-id"]
    entry = result.result("contoso-scim")
    assert entry["status"] == "pushed"
    assert entry["servicePrincipalId"] == target.service_principal_id
    assert entry["jobId"] == target.job_id
    assert entry["versions"] == {"SecretToken": harness.stack.keyvault.current_version(target.secret_name)}
    assert entry["jobStarted"] is False
    assert scenario.job_token("contoso-scim") == scenario.current_token(target.secret_name)
    assert graph.stored_secrets(target.service_principal_id)["BaseAddress"] == target.base_address
    assert graph.validations(target.service_principal_id) == [True]


def test_validation_comes_before_the_push(harness: Harness) -> None:
    harness.scenario.add_target("contoso-scim")
    harness.configure()
    harness.post({})
    hops = [r.hop for r in harness.stack.graph.requests]
    assert hops.index("validate") < hops.index("put_secrets")


def test_credentials_rejected_by_validate_credentials_are_never_pushed(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target("contoso-scim")
    before = scenario.job_token("contoso-scim")
    scenario.rotate(target.secret_name, accept=False)  # a wrong token pasted into Key Vault
    harness.configure()

    result = harness.post({})

    assert result.status == 422, result.text
    entry = result.result("contoso-scim")
    assert entry["status"] == "failed"
    error = entry["error"]
    assert error["code"] == "CredentialsRejected"
    assert error["retryable"] is False
    assert error["graphErrorCode"] == "BadRequest"
    assert error["graphInnerCode"] == "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
    assert error["reason"] == "rejected"
    assert error["graphRequestId"]
    assert graph.hop_count("put_secrets") == 0
    assert scenario.job_token("contoso-scim") == before


def test_keys_the_config_does_not_manage_are_carried_along(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target(
        "contoso-scim", stored_extra={"SyncNotificationSettings": '{"Enabled":false}', "SyncAll": "false"}
    )
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    stored = graph.stored_secrets(target.service_principal_id)
    assert stored["SyncNotificationSettings"] == '{"Enabled":false}'
    assert stored["SyncAll"] == "false"
    assert stored["SecretToken"] == scenario.current_token(target.secret_name)
    assert "warnings" not in result.result("contoso-scim")


def test_masked_unmanaged_keys_are_never_sent_back_and_are_named_in_a_warning(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target("contoso-scim", stored_extra={"Password": "CANARY-password-unmanaged"})
    scenario.canary_values.add("CANARY-password-unmanaged")
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    warnings = result.result("contoso-scim")["warnings"]
    assert [w["code"] for w in warnings] == ["UnmanagedMaskedKeys"]
    assert warnings[0]["keys"] == ["Password"]
    assert "*" not in graph.stored_secrets(target.service_principal_id).values()
    put = next(r for r in graph.requests if r.hop == "put_secrets")
    assert all(pair["value"] != "*" for pair in put.body["value"])


def test_dry_run_validates_and_pushes_nothing(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target(
        "contoso-scim", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException"
    )
    before = scenario.job_token("contoso-scim")
    harness.configure()

    result = harness.post({"dryRun": True})

    assert result.status == 200, result.text
    assert result.body["dryRun"] is True
    assert result.result("contoso-scim")["status"] == "validated"
    assert graph.validations(target.service_principal_id) == [True]
    assert graph.hop_count("put_secrets") == 0
    assert graph.hop_count("start") == 0
    assert scenario.job_token("contoso-scim") == before


@pytest.mark.parametrize(
    ("status", "resume", "started"),
    [
        ("Quarantine", None, True),
        ("Quarantine", False, False),
        ("Active", None, False),
        ("Paused", None, False),
        ("NotRun", None, False),
    ],
)
def test_a_job_is_started_only_when_it_is_in_quarantine(
    harness: Harness, status: str, resume: bool | None, started: bool
) -> None:
    graph = harness.stack.graph
    target = harness.scenario.add_target(
        "contoso-scim",
        job_status=status,
        quarantine_reason="EncounteredQuarantineException" if status == "Quarantine" else None,
        resume_quarantined=resume,
    )
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    assert result.result("contoso-scim")["jobStarted"] is started
    calls = graph.start_calls(target.service_principal_id, target.job_id)
    assert calls == (["Quarantine"] if started else [])
    assert graph.job_status(target.service_principal_id, target.job_id) == ("Active" if started else status)


def test_a_failed_start_does_not_undo_the_push(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target(
        "contoso-scim", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException"
    )
    harness.configure()
    graph.inject("start", Fault.status(403), times=-1)

    result = harness.post({})

    assert result.status == 200, result.text
    entry = result.result("contoso-scim")
    assert entry["status"] == "pushed"
    assert entry["jobStarted"] is False
    assert entry["warnings"][0]["code"] == "JobStartFailed"
    assert entry["warnings"][0]["cause"] == "GraphForbidden"
    assert scenario.job_token("contoso-scim") == scenario.current_token(target.secret_name)


def test_a_transient_start_failure_keeps_the_push_and_asks_for_a_retry(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target(
        "contoso-scim", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException"
    )
    harness.configure()
    graph.inject("start", Fault.status(503, retry_after="0"), times=-1)

    result = harness.post({})

    assert result.status == 503, result.text
    entry = result.result("contoso-scim")
    assert entry["status"] == "pushed"
    assert entry["warnings"][0] == entry["warnings"][0] | {"code": "JobStartFailed", "retryable": True}
    assert scenario.job_token("contoso-scim") == scenario.current_token(target.secret_name)

    graph.clear_faults()
    again = harness.post({})
    assert again.status == 200
    assert again.result("contoso-scim")["jobStarted"] is True


def test_the_job_is_discovered_when_the_config_names_none(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target(
        "contoso-scim",
        configured_job_id=False,
        job_status="Quarantine",
        quarantine_reason="EncounteredQuarantineException",
    )
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    assert result.result("contoso-scim")["jobId"] == target.job_id
    assert result.result("contoso-scim")["jobStarted"] is True
    assert graph.hop_count("list_jobs") == 1
    assert graph.hop_count("get_job") == 0  # the listed job already carried its status


def test_discovery_needs_exactly_one_job(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    one = scenario.add_target("two-jobs", configured_job_id=False)
    graph.add_job(one.service_principal_id, template_id="scim")
    harness.configure()

    result = harness.post({})

    assert result.status == 422
    error = result.result("two-jobs")["error"]
    assert error["code"] == "SyncJobAmbiguous"
    assert len(error["jobIds"]) == 2
    assert graph.hop_count("put_secrets") == 0


def test_validation_skip_pushes_without_validate_and_says_so(harness: Harness) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target("contoso-scim")
    harness.configure(validation="skip")

    result = harness.post({})

    assert result.status == 200, result.text
    assert [w["code"] for w in result.result("contoso-scim")["warnings"]] == ["ValidationSkipped"]
    assert graph.hop_count("validate") == 0
    assert scenario.job_token("contoso-scim") == scenario.current_token(target.secret_name)


def _past(days: int) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


@pytest.mark.parametrize(
    ("attributes", "code"),
    [
        ({"enabled": False}, "KeyVaultSecretDisabled"),
        ({"expires": _past(1)}, "KeyVaultSecretExpired"),
        ({"not_before": datetime.now(timezone.utc) + timedelta(days=1)}, "KeyVaultSecretNotYetValid"),
    ],
)
def test_an_unusable_current_version_fails_the_target_and_never_falls_back(
    harness: Harness, attributes: dict[str, object], code: str
) -> None:
    scenario, graph = harness.scenario, harness.stack.graph
    target = scenario.add_target("contoso-scim")
    harness.configure()
    assert harness.post({}).status == 200  # the job holds the current (good) version
    good = scenario.job_token("contoso-scim")
    scenario.rotate(target.secret_name, **attributes)

    result = harness.post({})

    assert result.status == 422, result.text
    assert result.result("contoso-scim")["error"]["code"] == code
    assert scenario.job_token("contoso-scim") == good
    assert graph.hop_count("put_secrets") == 1


def test_a_secret_shared_by_several_targets_is_read_once(harness: Harness) -> None:
    scenario = harness.scenario
    for name in ("app-a", "app-b", "app-c"):
        scenario.add_target(name, secret_name="shared-token")
    harness.configure()

    result = harness.post({})

    assert result.status == 200, result.text
    reads = [r for r in harness.stack.keyvault.requests if r.hop == "secret" and r.status == 200]
    assert len(reads) == 1
    for name in ("app-a", "app-b", "app-c"):
        assert scenario.job_token(name) == scenario.current_token("shared-token")


def test_one_failing_target_does_not_stop_the_others(harness: Harness) -> None:
    scenario = harness.scenario
    good = scenario.add_target("good-app")
    bad = scenario.add_target("bad-app")
    scenario.rotate(bad.secret_name, accept=False)
    harness.configure()

    result = harness.post({})

    assert result.status == 422
    assert result.body["status"] == "partial"
    assert result.result("good-app")["status"] == "pushed"
    assert result.result("bad-app")["error"]["code"] == "CredentialsRejected"
    assert scenario.job_token("good-app") == scenario.current_token(good.secret_name)


def test_retryable_failures_answer_503(harness: Harness) -> None:
    harness.scenario.add_target("contoso-scim")
    harness.configure()
    harness.stack.keyvault.inject("secret", Fault.status(503, retry_after="0"), times=-1)

    result = harness.post({})

    assert result.status == 503, result.text
    assert result.body["status"] == "failed"
    error = result.result("contoso-scim")["error"]
    assert error == error | {"code": "KeyVaultUnavailable", "retryable": True}
    assert harness.stack.graph.hop_count("put_secrets") == 0


def test_one_structured_log_record_per_target_outcome(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    target = harness.scenario.add_target("contoso-scim")
    harness.configure()

    result = harness.post({})

    records = [r for r in caplog.records if getattr(r, "custom_dimensions", {}).get("event") == "TargetSyncOutcome"]
    assert len(records) == 1
    dims = records[0].custom_dimensions  # type: ignore[attr-defined]
    assert dims["invocationId"] == result.invocation_id
    assert dims["target"] == "contoso-scim"
    assert dims["servicePrincipalId"] == target.service_principal_id
    assert dims["jobId"] == target.job_id
    assert dims["outcome"] == "pushed"
    assert dims["keyVaultVersions"] == result.result("contoso-scim")["versions"]
    assert isinstance(dims["durationMs"], int)
    assert dims["graphRequestId"]
