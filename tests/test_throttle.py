"""Throttling during a fan-out (issue #5): one 429 with Retry-After makes the whole fan-out wait at the
shared gate. A storm that Retry-After covers costs at most one extra request per worker (those already
in flight); a storm that outlasts it costs one probe per further window, not one request per worker.
Request counts are asserted, never times."""

from __future__ import annotations

import math
import threading
import time

import pytest

from standins import Fault
from tests.harness import Harness

WORKERS = 4
TARGETS = 12


class Storm:
    """Graph answers every request 429 with ``Retry-After`` from now until ``seconds`` later."""

    def __init__(self, harness: Harness, seconds: float, retry_after: str) -> None:
        self.graph = harness.stack.graph
        for hop in sorted(self.graph.HOPS):
            self.graph.inject(hop, Fault.status(429, retry_after=retry_after), times=-1)
        self.started = time.monotonic()
        self.ended: float | None = None
        self._timer = threading.Timer(seconds, self._end)
        self._timer.start()

    def _end(self) -> None:
        self.graph.clear_faults()
        self.ended = time.monotonic()

    def finish(self) -> float:
        """Wait for the storm to end; how long it really lasted (the timer may fire late on a busy machine)."""
        self._timer.join()
        assert self.ended is not None
        return self.ended - self.started

    def throttled(self) -> int:
        return sum(1 for r in self.graph.requests if r.status == 429)


def run_storm(harness: Harness, monkeypatch: pytest.MonkeyPatch, seconds: float, retry_after: float) -> tuple[int, int]:
    """(answers 429, bound) for a storm during a warm fan-out of TARGETS targets on WORKERS workers."""
    for index in range(TARGETS):
        harness.scenario.add_target(f"t{index:02d}")
    harness.configure(concurrency=WORKERS, deadlineSeconds=60)
    monkeypatch.setenv("SYNC_RETRY_MAX_ATTEMPTS", "8")  # headroom: this test counts requests, not give-ups
    assert harness.post({}).status == 200  # warm: tokens, challenge, pools
    harness.stack.set_latency(0.05)  # the workers' requests overlap

    storm = Storm(harness, seconds, f"{retry_after:g}")
    try:
        result = harness.post({})
    finally:
        lasted = storm.finish()

    assert result.status == 200, result.text
    assert {r["status"] for r in result.body["results"]} == {"pushed"}
    # Each worker has at most one request in flight when the storm begins; every later 429 is a probe,
    # at most one per Retry-After window the storm lasted.
    return storm.throttled(), WORKERS + max(0, math.ceil(lasted / retry_after) - 1)


def test_a_storm_covered_by_retry_after_costs_at_most_one_request_per_worker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttled, _ = run_storm(harness, monkeypatch, seconds=0.3, retry_after=1.0)
    assert 1 <= throttled <= WORKERS


def test_a_storm_outlasting_retry_after_costs_one_probe_per_window(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttled, bound = run_storm(harness, monkeypatch, seconds=1.0, retry_after=0.4)
    assert bound > WORKERS  # the storm did outlast Retry-After
    assert 1 <= throttled <= bound
