"""Expiry awareness: SecretNearExpiry / SecretExpired warn once per affected target, naming the job and
the expiry date, without calling Key Vault or Graph, also when the config leaves the job id to discovery."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.harness import Harness, epoch_in, event_grid_event, key_vault_event_data, webhook_event

EVENTS = [("SecretNearExpiry", "expires at"), ("SecretExpired", "expired at")]


def calls(harness: Harness) -> int:
    stack = harness.stack
    return len(stack.keyvault.requests) + len(stack.graph.requests) + len(stack.identity.requests)


def warnings_logged(caplog: pytest.LogCaptureFixture, code: str) -> list[dict[str, Any]]:
    return [
        r.custom_dimensions  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "custom_dimensions", {}).get("code") == code
    ]


@pytest.mark.parametrize(("event_type", "verb"), EVENTS)
def test_a_discovered_job_id_is_named_once_a_sync_has_found_it(
    harness: Harness, caplog: pytest.LogCaptureFixture, event_type: str, verb: str
) -> None:
    setup = harness.scenario.add_target("app-a", configured_job_id=False)
    harness.configure()
    assert harness.post({}).status == 200  # discovers the job (the service principal has exactly one)
    before = calls(harness)
    expiry = epoch_in(7 * 86400)
    expires_on = datetime.fromtimestamp(expiry, timezone.utc).isoformat()

    assert harness.fire(event_grid_event(event_type, key_vault_event_data(setup.secret_name, EXP=str(expiry)))) is None

    [warning] = warnings_logged(caplog, event_type)
    assert warning["target"] == "app-a"
    assert warning["jobId"] == setup.job_id
    assert warning["expiresOn"] == expires_on
    assert f"job {setup.job_id}" in warning["message"]
    assert f"{verb} {expires_on}" in warning["message"]
    assert calls(harness) == before  # no Key Vault, Graph or token call for an expiry event


def test_a_job_not_yet_discovered_is_described_by_its_service_principal(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    setup = harness.scenario.add_target("app-a", configured_job_id=False)
    harness.configure()
    expiry = epoch_in(86400)

    event = event_grid_event("SecretNearExpiry", key_vault_event_data(setup.secret_name, EXP=str(expiry)))
    assert harness.fire(event) is None

    [warning] = warnings_logged(caplog, "SecretNearExpiry")
    assert warning.get("jobId") is None
    assert setup.service_principal_id in warning["message"]
    assert "discovered" in warning["message"]
    assert calls(harness) == 0


def test_a_new_worker_forgets_discovered_jobs_and_the_webhook_names_them_too(harness: Harness) -> None:
    harness.scenario.add_target("app-a", configured_job_id=False, secret_name="shared")
    harness.scenario.add_target("app-b", secret_name="shared")
    harness.configure()
    assert harness.post({}).status == 200
    expiry = epoch_in(3 * 86400)
    delivery = [webhook_event("SecretNearExpiry", key_vault_event_data("shared", EXP=str(expiry)))]

    result = harness.post(delivery)
    assert result.status == 200, result.text
    named = {w["target"]: w["jobId"] for w in result.body["warnings"]}
    assert named == {t: harness.scenario.targets[t].job_id for t in ("app-a", "app-b")}
    assert result.body["events"][0]["outcome"] == "warned"

    import function_app

    function_app.state.reset()  # a new worker process
    result = harness.post(delivery)
    named = {w["target"]: w["jobId"] for w in result.body["warnings"]}
    assert named == {"app-a": None, "app-b": harness.scenario.targets["app-b"].job_id}


def test_expiry_warnings_are_logged_at_warning_level(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    setup = harness.scenario.add_target("app-a")
    harness.configure()
    harness.fire(event_grid_event("SecretExpired", key_vault_event_data(setup.secret_name, EXP=str(epoch_in(-60)))))
    records = [r for r in caplog.records if getattr(r, "custom_dimensions", {}).get("code") == "SecretExpired"]
    assert records and all(r.levelno == logging.WARNING for r in records)
