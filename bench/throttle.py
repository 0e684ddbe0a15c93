"""Throttling during a fan-out: what a Graph 429 storm costs in extra requests.

    python3 dev.py bench throttle

40 targets at concurrency 8, every call +50 ms. Partway through, Graph answers every request 429
with ``Retry-After: 1`` for a while (a throttling window on the stand-in's clock). The Graph client
shares one ``ThrottleGate`` (``shared.core.retry``) across the fan-out: the first 429 closes it, so the
workers that had a request in flight get one 429 each and everyone else waits. When the gate
reopens one request goes first (the probe) and the others wait for its answer.

Targets: a storm that ``Retry-After`` covers costs at most one extra request per worker (the
requests already in flight when it began). A storm that outlasts ``Retry-After`` (it is a hint)
costs one more request per further window -- one probe, not one per worker.

Side by side, bench-only variants: the shared gate without the probe (how it was before: everyone
goes the moment it reopens) and one gate per worker (every worker honours only its own 429s).
"""

from __future__ import annotations

import math

from bench import RemoteApp, RemoteStandins, Row, print_table

TARGETS = 40
WORKERS = 8
LATENCY = 0.05
RETRY_AFTER = 1.0
GRAPH_CALLS_PER_TARGET = 4  # validate, GET secrets, PUT secrets, GET job
STORM_AFTER = 40  # Graph requests before the storm starts (about a quarter of the way through)

VARIANTS = {None: "shared gate", "no_probe": "shared gate, no probe", "per_worker": "gate per worker"}


def storm_run(standins: RemoteStandins, seconds: float, gate: str | None = None) -> dict[str, object]:
    environ, document = standins.setup(TARGETS)
    with RemoteApp() as app:
        if gate:
            app.call("variant", gate=gate)
        app.configure(environ, document, concurrency=WORKERS)
        warm_up = app.post()  # tokens, challenge and connection pools are warm before the storm
        assert warm_up["statuses"] == {"pushed": TARGETS}, warm_up
        standins.set_latency(LATENCY)
        standins.call("storm", after=STORM_AFTER, seconds=seconds, retry_after=f"{RETRY_AFTER:g}")
        before = standins.counts()
        answer = app.post()
        delta = standins.counts() - before
    standins.set_latency(0.0)
    return {
        "extra": delta.requests("graph") - GRAPH_CALLS_PER_TARGET * TARGETS,
        "throttled": delta.status("graph", 429),
        "pushed": answer["statuses"].get("pushed", 0),
        "seconds": float(answer["seconds"]),
        "errors": answer["errors"],
    }


def run() -> None:
    rows: list[Row] = []
    notes: list[str] = []
    cases = ((None, 0.5), (None, 2.5), ("no_probe", 0.5), ("no_probe", 2.5), ("per_worker", 2.5))
    with RemoteStandins() as standins:
        for gate, seconds in cases:
            result = storm_run(standins, seconds, gate)
            extra = int(result["extra"])  # type: ignore[call-overload]
            further_windows = max(0, math.ceil(seconds / RETRY_AFTER) - 1)
            bound = WORKERS + further_windows
            target = f"<= {bound} ({WORKERS} in flight + {further_windows} probe{'s' if further_windows != 1 else ''})"
            rows.append(
                Row(
                    f"{VARIANTS[gate]}: {seconds:g} s storm",
                    f"{extra} extra ({extra / WORKERS:.2f}/worker), {result['pushed']}/{TARGETS} pushed",
                    target if gate is None else "comparison",
                    extra <= bound and result["pushed"] == TARGETS if gate is None else None,
                )
            )
            notes.append(
                f"{VARIANTS[gate]}, {seconds:g} s storm: {result['throttled']} answers 429, "
                f"invocation {result['seconds']:.2f} s" + (f", errors {result['errors']}" if result["errors"] else "")
            )
    notes.append(
        f"a {RETRY_AFTER:g} s Retry-After covers the 0.5 s storm (target: 1 extra per worker); "
        "the 2.5 s storm outlasts it by 2 windows"
    )
    print_table(
        f"Graph 429 storm during a fan-out ({TARGETS} targets, {WORKERS} workers, every call +{LATENCY * 1000:.0f} ms, "
        f"Retry-After {RETRY_AFTER:g} s)",
        rows,
        notes,
    )


if __name__ == "__main__":
    run()
