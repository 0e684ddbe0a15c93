"""Fan-out (issue #5): targets run concurrently up to the bound; each distinct Key Vault secret is read
once per invocation, all of them at the same time. Counted, never timed."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from shared.clients.keyvault import SecretReader
from shared.sync.pipeline import TargetPipeline
from tests.counting import tally
from tests.harness import Harness

BARRIER_TIMEOUT = 20.0  # generous: only a fan-out that never reaches the bound waits this long


class Overlap:
    """Wraps a method: counts how many calls run at once, and holds the first ``expected`` at a barrier
    until that many are inside together (proof that they overlap; a broken barrier fails the test)."""

    def __init__(self, expected: int) -> None:
        self._barrier = threading.Barrier(expected, timeout=BARRIER_TIMEOUT)
        self._lock = threading.Lock()
        self._inside = 0
        self.peak = 0
        self.calls = 0
        self.broken = False

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._inside += 1
                self.calls += 1
                self.peak = max(self.peak, self._inside)
            try:
                if not self._barrier.broken and self.calls <= self._barrier.parties:
                    try:
                        self._barrier.wait()
                    except threading.BrokenBarrierError:
                        self.broken = True
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self._inside -= 1

        return wrapper


@contextmanager
def overlap(monkeypatch: pytest.MonkeyPatch, cls: type, name: str, expected: int) -> Iterator[Overlap]:
    probe = Overlap(expected)
    with monkeypatch.context() as patch:  # undoes this patch only (the harness's settings stay)
        patch.setattr(cls, name, probe.wrap(getattr(cls, name)))
        yield probe


@pytest.mark.parametrize(("targets", "concurrency"), [(12, 4), (5, 8)])
def test_targets_run_concurrently_up_to_the_bound(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, targets: int, concurrency: int
) -> None:
    for index in range(targets):
        harness.scenario.add_target(f"t{index:02d}")
    harness.configure(concurrency=concurrency)
    bound = min(targets, concurrency)

    with overlap(monkeypatch, TargetPipeline, "run", bound) as probe:
        result = harness.post({})

    assert result.status == 200, result.text
    assert not probe.broken, "the fan-out never had as many targets running at once as its bound allows"
    assert probe.peak == bound
    assert probe.calls == targets


def test_n_targets_sharing_one_secret_read_it_once(harness: Harness) -> None:
    for index in range(6):
        harness.scenario.add_target(f"t{index}", secret_name="shared-token")
    harness.configure(concurrency=4)

    first = tally(harness.stack)
    result = harness.post({})
    done = tally(harness.stack) - first

    assert result.status == 200, result.text
    assert {r["status"] for r in result.body["results"]} == {"pushed"}
    reads = [r for r in harness.stack.keyvault.records("secret") if r.status == 200]
    assert len(reads) == 1
    assert done.service("graph")["put_secrets"] == 6

    before = tally(harness.stack)
    assert harness.post({}).status == 200
    assert (tally(harness.stack) - before).service("standin-kv") == Counter({"secret": 1})


def test_distinct_secrets_are_each_read_once_and_at_the_same_time(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(8):  # four secrets, two targets each
        harness.scenario.add_target(f"t{index}", secret_name=f"token-{index % 4}")
    harness.configure(concurrency=8)
    assert harness.post({}).status == 200  # warm: the Key Vault challenge is answered

    mark = len(harness.stack.keyvault.requests)
    with overlap(monkeypatch, SecretReader, "read_current", 4) as probe:
        result = harness.post({})

    assert result.status == 200, result.text
    assert not probe.broken, "the four distinct secrets were not read at the same time"
    assert probe.calls == 4
    paths = Counter(r.path.rstrip("/").lower() for r in harness.stack.keyvault.requests[mark:])
    assert sorted(paths.values()) == [1, 1, 1, 1]
