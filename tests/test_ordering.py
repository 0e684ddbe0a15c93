"""Issue #3, item 4: at-least-once, unordered delivery, and concurrent invocations for one target.

Properties (hypothesis): random interleavings of new versions, duplicate and stale events, over every
delivery channel, always leave each job holding Key Vault's current version, and within one process a
job never goes back to an older value after a newer one was pushed. Concurrent invocations (threads
calling the decorated functions) cannot leave an older value last: ``shared.ledger.memory`` serialises pushes
per target and makes an invocation whose values were read before the last push read them again.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from shared.core.config import Target
from shared.core.errors import TargetBusy
from shared.core.retry import Deadline
from shared.ledger.memory import MemoryLedger
from standins import Fault
from standins.scenario import Scenario
from tests.harness import Harness, cloud_event, event_grid_event, key_vault_event_data, webhook_event
from tests.put_modes import graph_put_mode, pytest_generate_tests  # noqa: F401 - both PUT readings

SECRET = "shared-token"
TARGETS = ("t1", "t2")  # both use SECRET
CHANNELS = ("trigger-eventgrid", "trigger-cloudevents", "webhook-eventgrid", "webhook-cloudevents")


class World:
    """A fresh estate and worker process for one hypothesis example (the fixture runs once per test)."""

    def __init__(self, harness: Harness, *, read_timeout: str | None = None) -> None:
        self.harness = harness
        harness.stack.reset()
        function_app.state.reset()
        self.scenario = Scenario(harness.stack)
        for name in TARGETS:
            self.scenario.add_target(name, secret_name=SECRET)
        self.tokens = [self.scenario.current_token(SECRET)]  # oldest first
        self.versions = [harness.stack.keyvault.current_version(SECRET)]
        self.track()
        harness.set_config(self.scenario.config_json())
        if read_timeout is not None:
            harness.monkeypatch.setenv("SYNC_HTTP_READ_TIMEOUT_SECONDS", read_timeout)

    def track(self) -> None:
        """Every planted value joins the fixture's canary check."""
        self.harness.scenario.canary_values |= self.scenario.canary_values

    def rotate(self) -> None:
        """A new version. The app keeps accepting the old token too (as during a real rotation), so
        validateCredentials cannot be what keeps an older value from being pushed last: only ordering can."""
        old = self.tokens[-1]
        self.versions.append(self.scenario.rotate(SECRET))
        self.tokens.append(self.scenario.current_token(SECRET))
        self.track()
        for name in TARGETS:
            setup = self.scenario.targets[name]
            self.harness.stack.graph.also_accept_credentials(
                setup.service_principal_id, {"BaseAddress": setup.base_address, "SecretToken": old}
            )

    def deliver(self, version_index: int, channel: str) -> None:
        """Deliver the event of one version (possibly a stale one); the product must sync the current one."""
        data = key_vault_event_data(SECRET, version=self.versions[version_index])
        if channel == "trigger-eventgrid":
            raised = self.harness.fire(event_grid_event("SecretNewVersionCreated", data))
            assert raised is None
        elif channel == "trigger-cloudevents":
            assert self.harness.fire(cloud_event("SecretNewVersionCreated", data)) is None
        else:
            event = webhook_event("SecretNewVersionCreated", data, cloud=channel.endswith("cloudevents"))
            result = self.harness.post([event])
            assert result.status == 200, result.text

    def index_of(self, token: str | None) -> int:
        assert token in self.tokens, "a job holds a value that was never in Key Vault"
        return self.tokens.index(token)

    def job_indexes(self) -> dict[str, int]:
        return {name: self.index_of(self.scenario.job_token(name)) for name in TARGETS}

    def assert_current(self) -> None:
        assert self.job_indexes() == {name: len(self.tokens) - 1 for name in TARGETS}

    def assert_never_went_back(self) -> None:
        for name in TARGETS:
            sp = self.scenario.targets[name].service_principal_id
            pushed = [self.index_of(entry.get("SecretToken")) for entry in self.harness.stack.graph.secret_history(sp)]
            assert pushed == sorted(pushed), f"{name} went back to an older value: pushes {pushed}"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


def run_concurrently(*calls: Callable[[], None], stagger: float = 0.0) -> None:
    """Run each call in its own thread (as the host runs invocations); re-raise the first failure."""
    failures: list[BaseException] = []

    def guarded(call: Callable[[], None]) -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
        time.sleep(stagger)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "an invocation hung"
    if failures:
        raise failures[0]


# --- Properties ------------------------------------------------------------------------------------

OPERATION = st.one_of(
    st.tuples(st.just("rotate")),
    # Deliver the event of the version ``back`` versions before the newest (0 = the newest), once or twice.
    st.tuples(st.just("deliver"), st.integers(0, 4), st.sampled_from(CHANNELS), st.booleans()),
    st.tuples(st.just("http"), st.sampled_from(["all", "targets", "secrets"])),
)

SEQUENTIAL_EXAMPLES = 30


@settings(max_examples=SEQUENTIAL_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATION, min_size=1, max_size=7))
def test_any_interleaving_of_versions_duplicates_and_stale_events_converges(
    harness: Harness, operations: list[tuple[Any, ...]]
) -> None:
    world = World(harness)
    for operation in operations:
        if operation[0] == "rotate":
            world.rotate()
        elif operation[0] == "deliver":
            _, back, channel, twice = operation
            index = max(0, len(world.versions) - 1 - back)
            for _ in range(2 if twice else 1):
                world.deliver(index, channel)
            world.assert_current()  # whatever version the event named, the job holds the current one
        else:
            body = {"all": {}, "targets": {"targets": list(TARGETS)}, "secrets": {"secrets": [SECRET]}}[operation[1]]
            result = harness.post(body)
            assert result.status == 200, result.text
            world.assert_current()
    world.deliver(len(world.versions) - 1, "trigger-eventgrid")  # the newest version's own event, at least once
    world.assert_current()
    world.assert_never_went_back()


ROUND = st.tuples(
    st.booleans(),  # a new version before the round
    st.lists(st.sampled_from(CHANNELS), min_size=2, max_size=3),  # concurrent deliveries
    st.sampled_from([None, "secret", "validate", "get_secrets", "put_secrets"]),  # one slow hop
    st.booleans(),  # a new version in the middle of the round (its own event follows)
)

CONCURRENT_EXAMPLES = 12


@settings(max_examples=CONCURRENT_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(ROUND, min_size=1, max_size=2))
def test_concurrent_deliveries_never_leave_an_older_value_last(
    harness: Harness, rounds: list[tuple[bool, list[str], str | None, bool]]
) -> None:
    world = World(harness)
    for rotate_before, channels, slow_hop, rotate_during in rounds:
        if rotate_before:
            world.rotate()
        if slow_hop is not None:
            stand_in = harness.stack.keyvault if slow_hop == "secret" else harness.stack.graph
            stand_in.inject(slow_hop, Fault.slow(0.15))
        newest = len(world.versions) - 1
        calls: list[Callable[[], None]] = [
            (lambda channel=channel, newest=newest: world.deliver(newest, channel)) for channel in channels
        ]
        if rotate_during:

            def rotate_then_deliver() -> None:
                time.sleep(0.05)
                world.rotate()
                world.deliver(len(world.versions) - 1, "trigger-eventgrid")

            calls.append(rotate_then_deliver)
        run_concurrently(*calls, stagger=0.01)
        world.assert_current()
    world.assert_never_went_back()


# --- Deterministic races -----------------------------------------------------------------------------


def test_an_invocation_holding_older_values_cannot_push_them_last(harness: Harness) -> None:
    """A validates v1 and is slow before pushing; v2 arrives and B syncs it. B must not be overtaken by A."""
    world = World(harness)
    graph = harness.stack.graph
    graph.inject("get_secrets", Fault.slow(0.6))  # A, between validate and push

    def later_version() -> None:
        wait_until(lambda: bool(graph.records("validate")), "A validated v1")
        world.rotate()
        world.deliver(len(world.versions) - 1, "trigger-eventgrid")

    run_concurrently(lambda: world.deliver(0, "trigger-eventgrid"), later_version)
    world.assert_current()
    world.assert_never_went_back()


def test_values_read_before_the_last_push_are_read_again(harness: Harness) -> None:
    """A's Key Vault read finishes first but A gets the target only after B pushed newer values: A re-reads.

    B's read is slow (it returns the version current when it is served: v2). A reads v1 while B holds
    the target; v2 is created; B pushes v2; then A, holding v1 read before B's values, must read again.
    v2 gets no event of its own here: only the ledger can make A push v2 instead of v1.
    """
    world = World(harness)
    vault = harness.stack.keyvault
    vault.inject("secret", Fault.slow(0.8))  # B's read

    def a_then_rotate() -> None:
        time.sleep(0.1)  # B's read arrived first and holds the slow fault
        a = threading.Thread(target=lambda: world.deliver(0, "trigger-eventgrid"))
        a.start()
        wait_until(lambda: any(r.status == 200 for r in vault.records("secret")), "A read v1")
        world.rotate()
        a.join(timeout=30)

    run_concurrently(lambda: world.deliver(0, "trigger-eventgrid"), a_then_rotate)
    world.assert_current()
    world.assert_never_went_back()
    assert len(vault.records("secret")) >= 3, "A read again"


def test_a_timed_out_push_that_lands_late_cannot_overwrite_a_newer_one(harness: Harness) -> None:
    """A's PUT times out but Graph applies it later; A retries and succeeds. B then pushes v2.

    If A let go of the target at once, its stray PUT (v1) would land after B's (v2).
    """
    world = World(harness, read_timeout="0.3")
    graph = harness.stack.graph
    graph.inject("put_secrets", Fault.slow(0.45))  # served after the client gave up on it

    def later_version() -> None:
        wait_until(lambda: bool(graph.records("get_secrets")), "A is about to push v1")
        world.rotate()
        world.deliver(len(world.versions) - 1, "trigger-eventgrid")

    run_concurrently(lambda: world.deliver(0, "trigger-eventgrid"), later_version)
    wait_until(lambda: any(r.fault == "slow" for r in graph.records("put_secrets")), "the stray push landed")
    world.assert_current()
    world.assert_never_went_back()


def test_concurrent_http_requests_for_one_target(harness: Harness) -> None:
    world = World(harness)
    harness.stack.graph.inject("validate", Fault.slow(0.2), times=2)
    results: list[int] = []

    def post() -> None:
        results.append(harness.post({"targets": ["t1"]}).status)

    def rotate_and_post() -> None:
        time.sleep(0.1)
        world.rotate()
        post()

    run_concurrently(post, post, rotate_and_post, stagger=0.02)
    assert results.count(200) >= 1
    assert world.scenario.job_token("t1") == world.tokens[-1]
    world.assert_never_went_back()


def test_a_target_held_past_the_deadline_fails_as_retryable() -> None:
    ledger = MemoryLedger()
    t1, t2 = (Target(n, "00000000-0000-0000-0000-000000000001", None, None, {}, True) for n in ("t1", "t2"))
    with ledger.hold(t1, Deadline(5)):
        started = time.monotonic()
        with pytest.raises(TargetBusy) as caught:
            ledger.hold(t1, Deadline(0.1))
        assert time.monotonic() - started >= 0.1
    assert caught.value.retryable is True
    with ledger.hold(t2, Deadline(0.1)):  # other targets are not held up
        pass


def test_duplicate_events_in_one_batch_sync_once(harness: Harness) -> None:
    world = World(harness)
    world.rotate()
    event = webhook_event("SecretNewVersionCreated", key_vault_event_data(SECRET, version=world.versions[-1]))
    stale = webhook_event("SecretNewVersionCreated", key_vault_event_data(SECRET, version=world.versions[0]))
    result = harness.post([event, dict(event), stale, {**event, "id": str(uuid.uuid4())}])
    assert result.status == 200, result.text
    assert sorted(r["target"] for r in result.body["results"]) == sorted(TARGETS)
    assert len(harness.stack.graph.records("put_secrets")) == len(TARGETS)
    world.assert_current()
    assert json.dumps(result.body).count("synced") == 4
