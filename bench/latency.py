"""Latency as a multiple of one call's latency: warm and cold single-target syncs, the fan-out, the ledger.

    python3 dev.py bench latency

Every stand-in (and the storage proxy) adds ``LATENCY`` to every call, so a sync that makes its calls
one after another takes about (calls x LATENCY), and one that overlaps independent calls less. Only
three calls of a warm sync depend on each other -- read the credentials, validate them, push them --
so its floor is 3 call latencies. A cold sync must also answer Key Vault's challenge and get Key
Vault's token first (the protocol orders those), so its floor is 5; the Graph token is fetched
meanwhile. All figures come from one run; the app and the stand-ins run in processes of their own.
"""

from __future__ import annotations

from bench import RemoteApp, RemoteStandins, Row, median, print_table
from bench.fanout import LATENCY as FANOUT_LATENCY
from bench.fanout import TARGETS as FANOUT_TARGETS
from bench.fanout import timed_run

LATENCY = 0.1
WARM_RUNS = 5
WARM_TARGET = 3.3
COLD_FLOOR = 5.0
BOUND = 8


def _warm(app: RemoteApp, runs: int = WARM_RUNS) -> float:
    samples = []
    for _ in range(runs):
        answer = app.post()
        assert answer["status"] == 200, answer
        samples.append(float(answer["seconds"]))
    return median(samples)


def run() -> None:
    rows: list[Row] = []
    with RemoteStandins() as standins:
        environ, document = standins.setup(1)
        standins.set_latency(LATENCY)
        with RemoteApp() as app:  # a fresh worker: no token, no challenge, no connection
            app.configure(environ, document)
            app.call("preload")  # the SDKs' import time is cold_start's business: this is the network's
            cold = float(app.post()["seconds"]) / LATENCY
            warm = _warm(app) / LATENCY
        rows.append(
            Row("warm, 1 target (in-process ledger)", f"{warm:.2f} x latency", f"<= {WARM_TARGET}", warm <= WARM_TARGET)
        )
        rows.append(
            Row("cold, 1 target (first invocation, SDKs imported)", f"{cold:.2f} x latency", f"floor {COLD_FLOOR:g}")
        )

        storage = standins.call("storage")["environ"]
        environ, document = standins.setup(1)
        standins.set_latency(LATENCY)
        with RemoteApp() as app:
            app.configure({**environ, **storage}, document)
            app.post()
            durable = _warm(app) / LATENCY
        rows.append(Row("warm, 1 target (durable ledger)", f"{durable:.2f} x latency", "floor 4 (3 + record write)"))

        environ, document = standins.setup(FANOUT_TARGETS, reverse=True)
        with RemoteApp() as app:
            concurrent = timed_run(standins, app, environ, document, BOUND)
            sequential = timed_run(standins, app, environ, document, 1)
        speedup = sequential / concurrent
        rows.append(Row(f"fan-out, {FANOUT_TARGETS} targets: concurrency 1", f"{sequential:.2f} s"))
        rows.append(Row(f"fan-out, {FANOUT_TARGETS} targets: concurrency {BOUND}", f"{concurrent:.2f} s"))
        rows.append(
            Row("fan-out speedup", f"{speedup:.2f}x", f"bound {BOUND}x, >= {0.8 * BOUND:.1f}x", speedup >= 0.8 * BOUND)
        )
    print_table(
        f"Latency (every call +{LATENCY * 1000:.0f} ms; fan-out +{FANOUT_LATENCY * 1000:.0f} ms)",
        rows,
        [f"median of {WARM_RUNS} warm runs; cold is one fresh worker process's first invocation"],
    )


if __name__ == "__main__":
    run()
