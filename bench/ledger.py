"""What the durable ledger costs on the hot path: storage calls per target and warm latency.

    python3 dev.py bench ledger

The app runs in a fresh interpreter of its own, the stand-ins and Azurite (behind the counting
proxy of ``standins.storage``) in another. Every call -- Key Vault, Graph and storage -- gets the
same injected latency, so the warm single-target sync is reported as a multiple of one call's
latency, with and without the ledger, in the same run. Target: at most one read, one conditional
write and the lease calls (acquire, release) per target per sync.
"""

from __future__ import annotations

from bench import Counts, RemoteApp, RemoteStandins, Row, median, print_table

LATENCY = 0.05
WARM_RUNS = 7
STORAGE_HOPS = ("acquire", "read", "write", "release", "renew", "create_container", "other")


def _storage_calls(delta: Counts, targets: int) -> dict[str, float]:
    hops = delta.raw["hops"].get("storage", {})
    return {hop: hops.get(hop, 0) / targets for hop in STORAGE_HOPS if hops.get(hop, 0)}


def _warm_seconds(app: RemoteApp) -> float:
    app.post()  # cold: tokens, challenge, the first lease creates the record
    app.post()
    samples = []
    for _ in range(WARM_RUNS):
        answer = app.post()
        assert answer["status"] == 200, answer
        samples.append(answer["seconds"])
    return median(samples)


def run() -> None:
    rows: list[Row] = []
    notes: list[str] = []
    with RemoteStandins() as standins:
        storage = standins.call("storage")["environ"]
        for targets in (1, 8):
            environ, document = standins.setup(targets)
            with RemoteApp() as app:
                app.configure({**environ, **standins.call("storage")["environ"]}, document, concurrency=8)
                assert app.post()["status"] == 200
                app.call("drain")  # lease releases go out after the answer
                before = standins.counts()
                assert app.post()["status"] == 200
                app.call("drain")
                per_target = _storage_calls(standins.counts() - before, targets)
            reads, writes = per_target.get("read", 0), per_target.get("write", 0)
            locks = per_target.get("acquire", 0) + per_target.get("release", 0)
            rows.append(
                Row(
                    f"warm, {targets} target(s): storage calls per target",
                    ", ".join(f"{hop} {n:g}" for hop, n in per_target.items()),
                    "read <= 1, write <= 1, lease acquire + release",
                    reads <= 1
                    and writes <= 1
                    and locks <= 2
                    and set(per_target) <= {"acquire", "read", "write", "release"},
                )
            )

        environ, document = standins.setup(1)
        standins.set_latency(LATENCY)
        with RemoteApp() as app:
            app.configure(environ, document)
            without = _warm_seconds(app)
        with RemoteApp() as app:
            app.configure({**environ, **storage}, document)
            with_ledger = _warm_seconds(app)
        standins.set_latency(0)
    rows.append(Row("warm single target, no ledger", f"{without / LATENCY:.2f} x call latency"))
    rows.append(Row("warm single target, durable ledger", f"{with_ledger / LATENCY:.2f} x call latency"))
    rows.append(Row("ledger overhead", f"+{(with_ledger - without) / LATENCY:.2f} call latencies"))
    notes.append(
        f"injected latency {LATENCY * 1000:.0f} ms on every Key Vault, Graph and storage call; "
        f"median of {WARM_RUNS} warm runs"
    )
    print_table("Durable ledger on the hot path (Azurite behind a counting proxy)", rows, notes)


if __name__ == "__main__":
    run()
