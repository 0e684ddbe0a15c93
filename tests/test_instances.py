"""Two app instances (separate processes) syncing the same target: the durable ledger keeps them in order.

The hazard: instance A reads version 1 and is slow to validate; version 2 is created and instance B
pushes it; then A pushes version 1 and the job ends on the old token. Each instance here is a fresh
interpreter (``bench.app_process``) with its own worker state, so nothing but Blob Storage (Azurite)
is shared between them. During a rotation every issued token stays valid at the SCIM app (a grace
period), so validateCredentials cannot hide a backwards push: only the ledger prevents it.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import pytest

from bench import RemoteApp
from standins import Fault
from standins.storage import StorageProxy
from tests.harness import TEST_SETTINGS, Harness

#: Randomised interleavings of the race test (each: up to two slow validations, a rotation, three syncs).
INTERLEAVINGS = 24


@dataclass
class Estate:
    """One target whose tokens are all accepted by the SCIM app; the order of Key Vault's versions."""

    harness: Harness
    tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.setup = self.harness.scenario.add_target("t1")
        self.sp = self.setup.service_principal_id
        self.tokens.append(self.harness.scenario.current_token(self.setup.secret_name))

    def rotate(self) -> None:
        graph = self.harness.stack.graph
        graph.also_accept_credentials(self.sp, {"BaseAddress": self.setup.base_address, "SecretToken": self.tokens[-1]})
        self.harness.scenario.rotate(self.setup.secret_name)
        self.tokens.append(self.harness.scenario.current_token(self.setup.secret_name))

    def pushed_order(self) -> list[int]:
        """For each PUT that reached Graph, the index of the Key Vault version it carried."""
        index = {token: i for i, token in enumerate(self.tokens)}
        return [index[entry["SecretToken"]] for entry in self.harness.stack.graph.secret_history(self.sp)]

    def job_index(self) -> int:
        return self.tokens.index(self.harness.scenario.job_token("t1") or "")


def older_after_newer(order: list[int]) -> int:
    """Pushes that put back a version older than one pushed before them."""
    newest, count = -1, 0
    for index in order:
        count += index < newest
        newest = max(newest, index)
    return count


@contextmanager
def instances(
    harness: Harness, storage: StorageProxy | None, count: int = 2, **settings: str
) -> Iterator[list[RemoteApp]]:
    environ = {**harness.stack.environ(), **TEST_SETTINGS, **settings}
    if storage is not None:
        environ.update(
            AzureWebJobsStorage=storage.connection_string, SYNC_LEDGER_CONTAINER=os.environ["SYNC_LEDGER_CONTAINER"]
        )
    with ExitStack() as stack:
        apps = [stack.enter_context(RemoteApp()) for _ in range(count)]
        for app in apps:
            app.configure(environ, harness.scenario.config_document())
        yield apps


def run_together(*work: Callable[[], object]) -> None:
    threads = [threading.Thread(target=w) for w in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


def _slow_first_push_then_rotation(harness: Harness, estate: Estate, a: RemoteApp, b: RemoteApp) -> None:
    """A's validation is slow; while it waits, version 2 is created and B syncs it."""
    harness.stack.graph.inject("validate", Fault.slow(1.0), times=1)

    def b_after_rotation() -> None:
        while not harness.stack.graph.arrivals("validate"):  # A is inside validateCredentials
            time.sleep(0.01)
        estate.rotate()
        b.post({})

    run_together(lambda: a.post({}), b_after_rotation)


def test_without_the_durable_ledger_two_instances_can_put_an_older_token_back(harness: Harness) -> None:
    """The control: the in-process ledger cannot order two processes, and the race test sees it."""
    estate = Estate(harness)
    harness.configure()
    with instances(harness, None) as (a, b):
        _slow_first_push_then_rotation(harness, estate, a, b)
    assert estate.pushed_order() == [1, 0]
    assert older_after_newer(estate.pushed_order()) == 1
    assert estate.job_index() == 0  # the job ended on the old token


def test_with_the_durable_ledger_the_late_instance_waits_and_pushes_the_newest(
    harness: Harness, storage: StorageProxy
) -> None:
    estate = Estate(harness)
    harness.configure()
    with instances(harness, storage) as (a, b):
        _slow_first_push_then_rotation(harness, estate, a, b)
    assert estate.pushed_order() == [0, 1]  # A pushed its version first; B waited for the lock, re-read, pushed 2
    assert estate.job_index() == 1


def test_randomised_interleavings_of_two_instances_never_go_backwards(
    harness: Harness, storage: StorageProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    estate = Estate(harness)
    harness.configure()
    seed = int(os.environ.get("SYNC_RACE_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    graph = harness.stack.graph
    failures: list[str] = []
    with instances(harness, storage) as apps:
        for round_no in range(INTERLEAVINGS):
            for _ in range(rng.randint(0, 2)):
                graph.inject("validate", Fault.slow(rng.uniform(0.05, 0.4)), times=1)
            first, second = rng.sample(apps, 2)
            delays = [rng.uniform(0, 0.3) for _ in range(3)]
            rotate_at = rng.uniform(0, 0.4)
            notified = rng.choice(apps)  # the instance Event Grid delivers the new version's event to

            def sync(app: RemoteApp, delay: float) -> Callable[[], None]:
                return lambda: (time.sleep(delay), app.post({}))

            def rotation(
                rotate_at: float = rotate_at, delay: float = delays[2], notified: RemoteApp = notified
            ) -> None:
                time.sleep(rotate_at)
                estate.rotate()
                time.sleep(delay)
                answer = notified.post({})
                if answer["status"] not in (200, 503):  # 503: TargetBusy, Event Grid would deliver again
                    failures.append(f"{answer}")

            run_together(sync(first, delays[0]), sync(second, delays[1]), rotation)
            graph.clear_faults()
            if estate.job_index() != len(estate.tokens) - 1:  # a TargetBusy answer: the redelivery
                notified.post({})
            assert estate.job_index() == len(estate.tokens) - 1, f"seed {seed}, round {round_no}: not the newest"
    order = estate.pushed_order()
    backwards = older_after_newer(order)
    with capsys.disabled():
        print(
            f"\nrace: {INTERLEAVINGS} interleavings (seed {seed}), {len(order)} pushes, "
            f"{len(estate.tokens)} versions, {backwards} older-after-newer"
        )
    assert not failures
    assert backwards == 0, f"seed {seed}: pushes went backwards: {order}"


def test_a_killed_instance_holding_the_lock_delays_the_next_sync_only_until_its_lease_expires(
    harness: Harness, storage: StorageProxy
) -> None:
    harness.scenario.add_target("t1")
    harness.configure(deadlineSeconds=60)
    harness.stack.graph.inject("validate", Fault.stall(120), times=1)
    with instances(harness, storage, count=1, SYNC_HTTP_READ_TIMEOUT_SECONDS="100") as (a,):
        holder = threading.Thread(target=lambda: _ignore_ended(a))
        holder.start()
        while not harness.stack.graph.arrivals("validate"):  # A holds the lease and waits on Graph
            time.sleep(0.02)
        os.kill(a.pid, signal.SIGKILL)
        holder.join(timeout=30)
    before = storage.calls_for("t1")
    answer = harness.post({})
    assert answer.status == 200, answer.text
    assert answer.result("t1")["status"] == "pushed"
    calls = storage.calls_for("t1") - before
    assert calls["acquire"] > 1  # it found the dead instance's lease and waited for it to expire
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(
        harness.scenario.targets["t1"].secret_name
    )


def _ignore_ended(app: RemoteApp) -> None:
    try:
        app.post({})
    except (RuntimeError, OSError, ValueError):
        pass  # the process was killed mid-call
