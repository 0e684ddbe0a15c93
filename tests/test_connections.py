"""Connection reuse (issue #5): keep-alive pools sized to the concurrency bound, so a warm invocation
opens no new connection (no new TLS handshake) to Graph or Key Vault. Counted on the stand-ins."""

from __future__ import annotations

from tests.counting import tally
from tests.harness import Harness


def test_a_warm_invocation_opens_no_new_connection(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    before = tally(harness.stack)
    assert harness.post({}).status == 200
    first = tally(harness.stack) - before
    # the stored secrets and the job are read while the credentials are read and validated: at most three at once
    assert 1 <= first.connections["graph"] <= 3
    assert first.connections["standin-kv"] == 1  # the challenge and the read share one connection

    graph_opened = first.connections["graph"]
    for _ in range(3):
        before = tally(harness.stack)
        assert harness.post({}).status == 200
        warm = tally(harness.stack) - before
        graph_opened += warm.connections["graph"]
        assert warm.connections["standin-kv"] == 0
        assert warm.connections["identity"] == 0
    # Every connection opened is kept: never more in all than one target's overlap is wide (3 requests at once).
    assert graph_opened <= 3


def test_pools_hold_one_connection_per_worker_beyond_urllib3s_default_of_ten(harness: Harness) -> None:
    """Whatever the timing, a pool as large as the bound never opens more connections than the bound:
    every connection opened is kept and reused (urllib3's default pool of 10 would throw the extra ones
    away and open them again on every invocation)."""
    concurrency = 12
    for index in range(concurrency):
        harness.scenario.add_target(f"t{index:02d}")
    harness.configure(concurrency=concurrency)
    harness.stack.set_latency(0.05)  # the workers overlap, so each one holds a connection

    before = tally(harness.stack)
    for _ in range(3):
        result = harness.post({})
        assert result.status == 200, result.text
    opened = tally(harness.stack) - before

    assert 1 <= opened.connections["graph"] <= concurrency
    assert 1 <= opened.connections["standin-kv"] <= concurrency
