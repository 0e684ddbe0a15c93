"""Fan-out: 100 targets through the same code at the concurrency bound and at concurrency 1, and the
peak memory of a 1,000-target invocation.

    python3 dev.py bench fanout

Every stand-in adds 50 ms to every call. The speedup of ``concurrency: 8`` over ``concurrency: 1``
should be at least 0.8 x the bound. Both runs are warm (a first run at zero latency fills the
connection pools, tokens and the Key Vault challenge), so the ratio compares the fan-out alone.
The config lists the targets in the reverse order of their secret names: the bench must not depend
on the two orders agreeing (they rarely do; Key Vault reads are queued in the order targets need them).

The app runs in its own interpreter and the stand-ins in another: on this 2-core machine, stand-ins
in the app's process would compete with it for the GIL (their TLS, HTTP parsing and JSON per request
are about as much work as the app's), which would measure the stand-ins rather than the fan-out. The
peak RSS (``ru_maxrss``) of the app process therefore counts the app alone.
"""

from __future__ import annotations

import time

from bench import RemoteApp, RemoteStandins, Row, print_table

TARGETS = 100
BOUND = 8
LATENCY = 0.05
RSS_TARGETS = 1000
RSS_LIMIT_MB = 150.0
#: Graph round trips per target in a warm invocation: validate, GET secrets, PUT secrets, GET job. The Key Vault
#: reads run on their own pool ahead of the targets, so they overlap the Graph calls.
GRAPH_CALLS_PER_TARGET = 4


def timed_run(
    standins: RemoteStandins, app: RemoteApp, environ: dict[str, str], document: dict, concurrency: int
) -> float:
    app.configure(environ, document, concurrency=concurrency)
    standins.set_latency(0.0)
    warm_up = app.post()  # fills pools, tokens and the challenge for this configuration
    assert warm_up["statuses"] == {"pushed": TARGETS}, warm_up
    standins.set_latency(LATENCY)
    answer = app.post()
    standins.set_latency(0.0)
    assert answer["statuses"] == {"pushed": TARGETS}, answer
    return float(answer["seconds"])


def run() -> None:
    started = time.monotonic()
    with RemoteStandins() as standins:
        environ, document = standins.setup(TARGETS, reverse=True)
        with RemoteApp() as app:
            concurrent = timed_run(standins, app, environ, document, BOUND)
            sequential = timed_run(standins, app, environ, document, 1)
        speedup = sequential / concurrent

        environ, document = standins.setup(RSS_TARGETS)
        with RemoteApp() as app:
            app.configure(environ, document, concurrency=BOUND)
            one = app.post({"targets": ["target-0000"]})
            assert one["statuses"] == {"pushed": 1}, one
            rss_one = float(app.call("rss")["mb"])
            many = app.post()
            assert many["statuses"] == {"pushed": RSS_TARGETS}, many
            rss_many = float(app.call("rss")["mb"])

    floor = TARGETS * GRAPH_CALLS_PER_TARGET * LATENCY
    rows = [
        Row(f"{TARGETS} targets, concurrency 1", f"{sequential:.2f} s", f"(Graph latency alone: {floor:.1f} s)"),
        Row(
            f"{TARGETS} targets, concurrency {BOUND}",
            f"{concurrent:.2f} s",
            f"(Graph latency alone: {floor / BOUND:.2f} s)",
        ),
        Row("speedup", f"{speedup:.2f}x", f">= {0.8 * BOUND:.1f}x (0.8 x {BOUND})", speedup >= 0.8 * BOUND),
        Row("peak RSS after 1 target (SDKs loaded)", f"{rss_one:.0f} MB"),
        Row(
            f"peak RSS after {RSS_TARGETS} targets",
            f"{rss_many:.0f} MB",
            f"< {RSS_LIMIT_MB:.0f} MB",
            rss_many < RSS_LIMIT_MB,
        ),
        Row(f"{RSS_TARGETS} targets at zero latency", f"{float(many['seconds']):.2f} s"),
    ]
    print_table(
        f"Fan-out (every call +{LATENCY * 1000:.0f} ms; app and stand-ins each in their own process)",
        rows,
        [f"bench took {time.monotonic() - started:.0f} s"],
    )


if __name__ == "__main__":
    run()
