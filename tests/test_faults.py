"""Issue #3, items 1, 2 and 7: transient faults on every hop, the invocation deadline, partial failures.

The fault matrix injects every fault into every hop, once (absorbed: the sync succeeds) and for good
(a retryable failure: 503 over HTTP, a raise from the Event Grid trigger). Whatever happens, nothing
unvalidated is pushed, the job never holds a mix of old and new values, a running job is never
started, and (the ``harness`` fixture's canary check) no secret value shows up anywhere.

Timing rules: read timeouts are 0.3 s and slow answers 0.6 s; persistent faults run with two attempts
and a 5 s deadline. Waits are checked with lower bounds on stand-in timestamps, never upper bounds.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from shared.clients.graph import GraphClient
from standins import Fault, StandinStack
from standins.scenario import TargetSetup
from standins.server import StandinServer
from tests.harness import Harness, event_grid_event, key_vault_event_data

READ_TIMEOUT = "0.3"
SLOW = 0.6
PERSISTENT_ATTEMPTS = 2
OTHER_VAULT = "standin-kv-two"
OLD_BASE_ADDRESS = "https://scim.old.example/v1"

#: Hop label -> (stand-in, stand-in hop name).
HOPS: dict[str, tuple[str, str]] = {
    "token-keyvault": ("identity", "token@keyvault"),  # the token the Key Vault SDK asks for
    "token-graph": ("identity", "token@graph"),  # the Graph token (asked for meanwhile, not after)
    "keyvault-read": ("keyvault", "secret"),
    "validateCredentials": ("graph", "validate"),
    "get-secrets": ("graph", "get_secrets"),
    "put-secrets": ("graph", "put_secrets"),
    "list-jobs": ("graph", "list_jobs"),  # job discovery (no jobId configured)
    "get-job": ("graph", "get_job"),
    "start": ("graph", "start"),
}

FAULTS: dict[str, Callable[[], Fault]] = {
    "429-retry-after-0": lambda: Fault.status(429, retry_after="0"),
    "500": lambda: Fault.status(500),
    "502": lambda: Fault.status(502),
    "503": lambda: Fault.status(503),
    "504": lambda: Fault.status(504),
    "connection-reset": Fault.reset,
    "read-timeout": lambda: Fault.stall(SLOW),
    "slower-than-timeout": lambda: Fault.slow(SLOW),
}

MODES = ("once", "persistent-http", "persistent-event")

#: Every case of the matrix, one test id each.
MATRIX = [(hop, fault, mode) for hop in HOPS for fault in FAULTS for mode in MODES]


def server(stack: StandinStack, service: str) -> StandinServer:
    return {"identity": stack.identity, "keyvault": stack.keyvault, "graph": stack.graph}[service]


def expected_code(hop: str, fault: str) -> str:
    service = HOPS[hop][0]
    if service == "identity":
        return "ManagedIdentityUnavailable"
    prefix = "KeyVault" if service == "keyvault" else "Graph"
    return f"{prefix}Throttled" if fault.startswith("429") else f"{prefix}Unavailable"


def pairs(body: Any, field: str) -> dict[str, str]:
    items = body.get(field) if isinstance(body, dict) else None
    return {p["key"]: p.get("value") for p in items or [] if isinstance(p, dict) and "key" in p}


class Estate:
    """One quarantined target whose job holds old values for two managed keys and one unmanaged key."""

    def __init__(self, harness: Harness, *, discover_job: bool = False) -> None:
        self.harness = harness
        self.graph = harness.stack.graph
        self.target: TargetSetup = harness.scenario.add_target(
            "t1", job_status="Quarantine", configured_job_id=not discover_job
        )
        sp = self.target.service_principal_id
        old = self.graph.stored_secrets(sp)
        self.old_token = old["SecretToken"]
        # BaseAddress changes too, so a push that mixed old and new values would be visible.
        self.graph.set_stored_secrets(sp, {**old, "BaseAddress": OLD_BASE_ADDRESS, "SyncAll": "false"})
        self.new_token = harness.scenario.current_token(self.target.secret_name)

    def label(self, key: str, value: str | None) -> str:
        """Values as labels, so that a failing assertion prints no secret."""
        known = {
            self.old_token: "old-token",
            self.new_token: "new-token",
            OLD_BASE_ADDRESS: "old-base",
            self.target.base_address: "new-base",
            "false": "false",
        }
        return known.get(value or "", f"unexpected {key}")

    def stored_labels(self) -> dict[str, str]:
        stored = self.graph.stored_secrets(self.target.service_principal_id)
        return {k: self.label(k, v) for k, v in stored.items()}

    OLD = {"BaseAddress": "old-base", "SecretToken": "old-token", "SyncAll": "false"}
    NEW = {"BaseAddress": "new-base", "SecretToken": "new-token", "SyncAll": "false"}

    def check_invariants(self) -> None:
        # The job holds the old set or the new set, never a mix (and the unmanaged key survives).
        assert self.stored_labels() in (self.OLD, self.NEW)
        # Every PUT carried values that a validateCredentials call had accepted before it.
        accepted = [
            (r.time, {k: self.label(k, v) for k, v in pairs(r.body, "credentials").items()})
            for r in self.graph.records("validate")
            if r.status == 204
        ]
        for put in self.graph.records("put_secrets"):
            pushed = {k: self.label(k, v) for k, v in pairs(put.body, "value").items()}
            assert pushed in (self.NEW,), "a push carried something other than the validated new set"
            assert any(t <= put.time and creds == {k: pushed.get(k) for k in creds} for t, creds in accepted), (
                "a push carried values no validateCredentials call had accepted"
            )
        # Only a quarantined job is ever started.
        starts = self.graph.start_calls(self.target.service_principal_id, self.target.job_id)
        assert set(starts) <= {"Quarantine"}, f"started a job in state {starts}"

    def event(self) -> Any:
        version = self.harness.stack.keyvault.current_version(self.target.secret_name)
        return event_grid_event(
            "SecretNewVersionCreated", key_vault_event_data(self.target.secret_name, version=version)
        )


def wait_for_record(stand_in: StandinServer, hop: str, label: str) -> None:
    """A slow answer is logged once it has been served, after the client gave up on it."""
    for _ in range(40):
        if any(r.fault == label for r in stand_in.records(hop)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no request of {hop} met the fault {label}")


def record_exception(harness: Harness, exc: BaseException | None) -> None:
    """The whole traceback, chained exceptions included, goes into the canary check."""
    if exc is not None:
        harness.transcript.append("".join(traceback.format_exception(exc)))
        harness.transcript.append(repr(exc))


@pytest.mark.parametrize(("hop", "fault", "mode"), MATRIX, ids=["/".join(case) for case in MATRIX])
def test_fault_matrix(harness: Harness, monkeypatch: pytest.MonkeyPatch, hop: str, fault: str, mode: str) -> None:
    estate = Estate(harness, discover_job=hop == "list-jobs")
    harness.configure(deadlineSeconds=5)
    monkeypatch.setenv("SYNC_HTTP_READ_TIMEOUT_SECONDS", READ_TIMEOUT)
    if mode != "once":
        monkeypatch.setenv("SYNC_RETRY_MAX_ATTEMPTS", str(PERSISTENT_ATTEMPTS))
    service, hop_name = HOPS[hop]
    stand_in = server(harness.stack, service)
    injected = FAULTS[fault]()
    stand_in.inject(hop_name, injected, times=1 if mode == "once" else -1)
    after_start_hop = hop in ("get-job", "start")  # faults there come after the push
    # A start that answers too late still takes effect: the product reads the job back, sees it left
    # quarantine, and reports it started (and never sends a second start to the now running job).
    landed_start = hop == "start" and injected.kind == "slow"

    if mode == "once" or landed_start:
        if mode == "persistent-event":
            assert harness.fire(estate.event()) is None
        else:
            result = harness.post({})
            assert result.status == 200, result.text
            outcome = result.result("t1")
            assert outcome["status"] == "pushed"
            assert outcome["jobStarted"] is True
        assert harness.scenario.job_token("t1") == estate.new_token
        assert estate.stored_labels() == Estate.NEW
        wait_for_record(stand_in, hop_name, injected.label())  # the fault was really hit
        if landed_start:
            starts = estate.graph.start_calls(estate.target.service_principal_id, estate.target.job_id)
            assert starts == ["Quarantine"]
    elif mode == "persistent-http":
        result = harness.post({})
        assert result.status == 503, result.text
        outcome = result.result("t1")
        if after_start_hop:
            assert outcome["status"] == "pushed"
            assert estate.stored_labels() == Estate.NEW
            warning = next(w for w in outcome["warnings"] if w["code"] == "JobStartFailed")
            assert warning["retryable"] is True
            assert warning["cause"] == expected_code(hop, fault)
        else:
            assert outcome["status"] == "failed"
            assert outcome["error"]["code"] == expected_code(hop, fault)
            assert outcome["error"]["retryable"] is True
        assert result.body["status"] in ("failed", "partial")
        if injected.kind in ("status", "reset", "stall"):
            faulted = [r for r in stand_in.records(hop_name) if r.fault == injected.label()]
            assert len(faulted) == PERSISTENT_ATTEMPTS, "retried, and only as often as configured"
        if hop in ("token-keyvault", "token-graph", "keyvault-read", "validateCredentials", "get-secrets", "list-jobs"):
            assert not estate.graph.records("put_secrets"), "pushed without a validation"
    else:
        raised = harness.fire(estate.event())
        record_exception(harness, raised)
        assert type(raised).__name__ == "RetryableSyncFailure"
        code = "JobStartFailed" if after_start_hop else expected_code(hop, fault)
        assert f"t1: {code}" in str(raised)

    estate.check_invariants()


def test_fault_matrix_size() -> None:
    """Counted here so the number in the report is the number CI runs."""
    assert len(MATRIX) == len(HOPS) * len(FAULTS) * len(MODES) == 216


# --- Retry-After ----------------------------------------------------------------------------------

RETRY_AFTER_HOPS = {
    "token": ("identity", "token@keyvault"),
    "keyvault": ("keyvault", "secret"),
    "graph": ("graph", "validate"),
}


def _gap_after_fault(stand_in: StandinServer, hop: str) -> float:
    records = stand_in.records(hop)
    index = next(i for i, r in enumerate(records) if r.fault is not None)
    return records[index + 1].time - records[index].time


@pytest.mark.parametrize("service", list(RETRY_AFTER_HOPS))
def test_retry_after_in_seconds_is_honoured(harness: Harness, service: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=10)
    name, hop = RETRY_AFTER_HOPS[service]
    stand_in = server(harness.stack, name)
    stand_in.inject(hop, Fault.status(429, retry_after="1"))
    result = harness.post({})
    assert result.status == 200, result.text
    assert _gap_after_fault(stand_in, hop) >= 0.95


@pytest.mark.parametrize("service", list(RETRY_AFTER_HOPS))
def test_retry_after_as_http_date_is_honoured(harness: Harness, service: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=10)
    name, hop = RETRY_AFTER_HOPS[service]
    stand_in = server(harness.stack, name)
    # Whole seconds: two seconds ahead is more than one second ahead when the fault is served.
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    stand_in.inject(hop, Fault.status(503, retry_after=when))
    result = harness.post({})
    assert result.status == 200, result.text
    assert _gap_after_fault(stand_in, hop) >= 0.9


# --- Never retried ------------------------------------------------------------------------------------

NEVER_RETRIED = [
    ("identity", "token@keyvault", 400, "ManagedIdentityFailed"),
    ("identity", "token@keyvault", 401, "ManagedIdentityFailed"),
    ("identity", "token@keyvault", 403, "ManagedIdentityFailed"),
    ("identity", "token@keyvault", 404, "ManagedIdentityFailed"),
    ("keyvault", "secret", 400, "KeyVaultRequestFailed"),
    ("keyvault", "secret", 403, "KeyVaultForbidden"),
    ("keyvault", "secret", 404, "KeyVaultSecretNotFound"),
    ("graph", "validate", 400, "CredentialsRejected"),
    ("graph", "validate", 401, "GraphUnauthorized"),
    ("graph", "validate", 403, "GraphForbidden"),
    ("graph", "validate", 404, "SyncJobNotFound"),
    ("graph", "put_secrets", 400, "GraphRequestFailed"),
    ("graph", "put_secrets", 401, "GraphUnauthorized"),
    ("graph", "put_secrets", 403, "GraphForbidden"),
    ("graph", "put_secrets", 404, "ServicePrincipalNotFound"),
]


@pytest.mark.parametrize(
    ("service", "hop", "status", "code"), NEVER_RETRIED, ids=[f"{s}-{h}-{c}" for s, h, c, _ in NEVER_RETRIED]
)
def test_400_401_403_404_are_never_retried_even_with_retry_after(
    harness: Harness, service: str, hop: str, status: int, code: str
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    stand_in = server(harness.stack, service)
    stand_in.inject(hop, Fault.status(status, retry_after="0"), times=-1)
    result = harness.post({})
    assert result.status == 422, result.text
    error = result.result("t1")["error"]
    assert (error["code"], error["retryable"]) == (code, False)
    assert len([r for r in stand_in.records(hop) if r.fault]) == 1


# --- The invocation deadline ------------------------------------------------------------------------

DEADLINE_HOPS = {
    "token": ("identity", "token@keyvault"),
    "keyvault": ("keyvault", "secret"),
    "validateCredentials": ("graph", "validate"),
    "put-secrets": ("graph", "put_secrets"),
}


@pytest.mark.parametrize("hop", list(DEADLINE_HOPS))
def test_a_retry_after_past_the_deadline_fails_at_once_as_retryable(harness: Harness, hop: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=3)
    name, hop_name = DEADLINE_HOPS[hop]
    stand_in = server(harness.stack, name)
    stand_in.inject(hop_name, Fault.status(429, retry_after="600"), times=-1)
    result = harness.post({})
    assert result.status == 503, result.text
    error = result.result("t1")["error"]
    assert (error["code"], error["retryable"]) == ("DeadlineExceeded", True)
    assert "deadline" in error["message"]
    # The 600 s wait was neither slept through nor skipped: no second request.
    assert len(stand_in.records(hop_name)) == 1
    assert not harness.stack.graph.records("put_secrets") or hop == "put-secrets"


@pytest.mark.parametrize("hop", list(DEADLINE_HOPS))
def test_an_answer_that_never_comes_ends_at_the_deadline(harness: Harness, hop: str) -> None:
    """The read timeout (2 s) is longer than the deadline (1 s): each attempt is bounded by the time left."""
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=1)
    name, hop_name = DEADLINE_HOPS[hop]
    stand_in = server(harness.stack, name)
    stand_in.inject(hop_name, Fault.stall(3), times=-1)
    result = harness.post({})
    assert result.status == 503, result.text
    error = result.result("t1")["error"]
    assert (error["code"], error["retryable"]) == ("DeadlineExceeded", True)
    assert len(stand_in.records(hop_name)) == 1


def test_the_event_trigger_raises_when_the_deadline_passes(harness: Harness) -> None:
    estate = Estate(harness)
    harness.configure(deadlineSeconds=2)
    harness.stack.graph.inject("validate", Fault.status(503, retry_after="600"), times=-1)
    raised = harness.fire(estate.event())
    record_exception(harness, raised)
    assert type(raised).__name__ == "RetryableSyncFailure"
    assert "t1: DeadlineExceeded" in str(raised)
    estate.check_invariants()


def test_the_deadline_defaults_inside_the_platform_limits() -> None:
    from shared.core.config import DEFAULT_DEADLINE_SECONDS, MAX_DEADLINE_SECONDS, parse_config
    from shared.core.errors import ConfigInvalid
    from shared.core.retry import RetrySettings

    assert DEFAULT_DEADLINE_SECONDS < MAX_DEADLINE_SECONDS <= 230  # HTTP cuts at 230 s, Consumption at 300 s
    document = {
        "keyVaults": [{"name": "contoso-kv"}],
        "targets": [
            {
                "name": "t",
                "servicePrincipalId": "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11",
                "secrets": {"SecretToken": {"keyVaultSecret": "tok"}},
            }
        ],
    }
    assert parse_config(json.dumps(document)).deadline_seconds == DEFAULT_DEADLINE_SECONDS
    with pytest.raises(ConfigInvalid, match="deadlineSeconds"):
        parse_config(json.dumps({**document, "deadlineSeconds": 300}))
    settings = RetrySettings()  # connect and read timeouts always exist
    assert 0 < settings.connect_timeout <= settings.read_timeout < DEFAULT_DEADLINE_SECONDS


def test_backoff_is_exponential_with_jitter() -> None:
    from shared.core.retry import RetrySettings

    settings = RetrySettings(backoff_base=0.5, backoff_max=8.0)
    ceilings = [settings.backoff(n, rng=lambda low, high: high) for n in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert settings.backoff(3, rng=lambda low, high: low) == 0.0
    assert len({settings.backoff(4) for _ in range(20)}) > 1  # jittered


# --- The managed-identity hop, as it really behaves --------------------------------------------------


def test_a_failed_token_answer_is_not_cached_by_msal(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """msal caches a 429/5xx answer of the identity endpoint for 5 s (or its Retry-After) when it sees one.

    The product retries below msal and raises its own error instead of handing msal the failed answer,
    so the next invocation asks the endpoint again at once and succeeds once it has recovered.
    """
    harness.scenario.add_target("t1")
    harness.configure()
    monkeypatch.setenv("SYNC_RETRY_MAX_ATTEMPTS", "2")
    identity = harness.stack.identity
    identity.inject("token@keyvault", Fault.status(503), times=2)
    first = harness.post({})
    assert first.status == 503, first.text
    assert first.result("t1")["error"]["code"] == "ManagedIdentityUnavailable"
    assert len(identity.records("token@keyvault")) == 2
    second = harness.post({})
    assert second.status == 200, second.text
    assert len(identity.records("token@keyvault")) > 2


# --- A partial failure never hides ---------------------------------------------------------------------


def _partial_estate(harness: Harness) -> None:
    if OTHER_VAULT not in harness.stack.vaults:
        harness.stack.add_vault(OTHER_VAULT)
    harness.scenario.add_target("good")
    denied = harness.scenario.add_target("denied")
    harness.stack.keyvault.forbidden_secrets.add(denied.secret_name.lower())
    harness.scenario.add_target("throttled", vault=OTHER_VAULT)
    harness.configure()


def _outcome_records(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    found = {}
    for record in caplog.records:
        fields = getattr(record, "custom_dimensions", None)
        if isinstance(fields, dict) and fields.get("event") == "TargetSyncOutcome":
            found[fields["target"]] = {**fields, "level": record.levelno}
    return found


def test_partial_failure_names_each_target_and_why(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    _partial_estate(harness)
    harness.stack.vaults[OTHER_VAULT].inject("secret", Fault.status(503), times=-1)
    result = harness.post({})
    assert result.status == 503, result.text  # one failure is retryable
    assert result.body["status"] == "partial"
    by_target = {r["target"]: r for r in result.body["results"]}
    assert by_target["good"]["status"] == "pushed"
    assert harness.scenario.job_token("good") == harness.scenario.current_token("good-token")
    assert by_target["denied"]["status"] == "failed"
    assert by_target["denied"]["error"]["code"] == "KeyVaultForbidden"
    assert "Key Vault Secrets User" in by_target["denied"]["error"]["message"]
    assert by_target["throttled"]["error"]["code"] == "KeyVaultUnavailable"
    assert by_target["throttled"]["error"]["retryable"] is True

    logged = _outcome_records(caplog)
    assert logged["good"]["outcome"] == "pushed"
    assert (logged["denied"]["outcome"], logged["denied"]["errorCode"]) == ("failed", "KeyVaultForbidden")
    assert logged["denied"]["level"] == logging.ERROR
    assert logged["throttled"]["errorCode"] == "KeyVaultUnavailable"
    assert "retry later" in logged["throttled"]["errorMessage"]
    summary = next(
        r.custom_dimensions
        for r in caplog.records
        if getattr(r, "custom_dimensions", {}).get("event") == "SyncInvocationOutcome"
    )
    assert sorted(summary["failedTargets"]) == ["denied", "throttled"]
    assert summary["pushed"] == 1


def test_only_permanent_failures_answer_422_and_the_rest_still_runs(harness: Harness) -> None:
    _partial_estate(harness)
    result = harness.post({})
    assert result.status == 422, result.text
    assert result.body["status"] == "partial"
    statuses = {r["target"]: r["status"] for r in result.body["results"]}
    assert statuses == {"good": "pushed", "denied": "failed", "throttled": "pushed"}


def test_the_event_trigger_raises_for_the_retryable_target_only(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    _partial_estate(harness)
    # One event per target's secret: each is acknowledged or redelivered on its own.
    shared = harness.scenario.targets
    harness.stack.vaults[OTHER_VAULT].inject("secret", Fault.status(500), times=-1)
    for name in ("good", "denied"):
        event = event_grid_event("SecretNewVersionCreated", key_vault_event_data(shared[name].secret_name))
        assert harness.fire(event) is None  # pushed, or failed for good: acknowledged
    event = event_grid_event(
        "SecretNewVersionCreated", key_vault_event_data(shared["throttled"].secret_name, vault=OTHER_VAULT)
    )
    raised = harness.fire(event)
    record_exception(harness, raised)
    assert "throttled: KeyVaultUnavailable" in str(raised)
    logged = _outcome_records(caplog)
    assert (logged["denied"]["errorCode"], logged["denied"]["level"]) == ("KeyVaultForbidden", logging.ERROR)
    assert logged["good"]["outcome"] == "pushed"


def test_a_bug_in_one_target_does_not_stop_the_others(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    good = harness.scenario.add_target("good")
    broken = harness.scenario.add_target("broken")
    harness.configure()
    real = GraphClient.get_secrets

    def get_secrets(self: GraphClient, sp_id: str, call: Any) -> Any:
        if sp_id == broken.service_principal_id:
            raise RuntimeError("simulated bug")
        return real(self, sp_id, call)

    monkeypatch.setattr(GraphClient, "get_secrets", get_secrets)
    result = harness.post({})
    assert result.status == 503, result.text
    assert result.result("good")["status"] == "pushed"
    assert harness.scenario.job_token("good") == harness.scenario.current_token(good.secret_name)
    error = result.result("broken")["error"]
    assert (error["code"], error["retryable"]) == ("InternalError", True)
