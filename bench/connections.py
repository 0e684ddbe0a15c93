"""Connection reuse: new TCP+TLS connections per invocation, counted by the stand-ins.

    python3 dev.py bench connections

The Graph client and each Key Vault SecretClient use a keep-alive pool sized to the concurrency
bound (``shared.clients.http_session``), so once the first invocation has filled the pools a warm invocation
opens no new connection to Graph or Key Vault. Side by side, at concurrency 16, the same app with
urllib3's default pool of 10 connections per host: the workers beyond 10 open a connection, and the
pool throws it away afterwards, on every invocation.
"""

from __future__ import annotations

from bench import RemoteApp, RemoteStandins, Row, print_table

WARM_UP = 2  # invocations after the first one, until every worker has used its pooled connection at least once
WARM_INVOCATIONS = 5
LATENCY = 0.02  # enough that the workers overlap, so every pool slot is in use
SERVICES = ("graph", "keyvault", "identity")


def measure(standins: RemoteStandins, targets: int, concurrency: int, pool: str | None = None) -> dict[str, dict]:
    environ, document = standins.setup(targets)
    with RemoteApp() as app:
        if pool:
            app.call("variant", pool=pool)
        app.configure(environ, document, concurrency=concurrency)
        standins.set_latency(LATENCY)
        start = standins.counts()
        answers = [app.post() for _ in range(1 + WARM_UP)]
        warm_start = standins.counts()
        answers += [app.post() for _ in range(WARM_INVOCATIONS)]
        end = standins.counts()
    assert all(a["statuses"] == {"pushed": targets} for a in answers), answers
    cold, warm, total = warm_start - start, end - warm_start, end - start
    return {
        "cold": {s: cold.connections(s) for s in SERVICES},
        "warm": {s: warm.connections(s) / WARM_INVOCATIONS for s in SERVICES},
        "total": {s: total.connections(s) for s in SERVICES},
    }


def _fmt(counts: dict[str, float]) -> str:
    return ", ".join(f"{service} {counts[service]:.3g}" for service in SERVICES)


def run() -> None:
    rows: list[Row] = []
    with RemoteStandins() as standins:
        for targets, concurrency, pool in ((16, 8, None), (32, 16, None), (32, 16, "unsized")):
            result = measure(standins, targets, concurrency, pool)
            cold, warm, total = result["cold"], result["warm"], result["total"]
            label = f"{targets} targets, concurrency {concurrency}" + (", default pool (10)" if pool else "")
            rows.append(Row(f"{label}: first {1 + WARM_UP} invocations", _fmt(cold)))
            rows.append(
                Row(
                    f"{label}: each warm invocation",
                    _fmt(warm),
                    "graph 0, keyvault 0" if not pool else "comparison",
                    warm["graph"] + warm["keyvault"] == 0 if not pool else None,
                )
            )
            rows.append(
                Row(
                    f"{label}: all {1 + WARM_UP + WARM_INVOCATIONS} invocations",
                    _fmt(total),
                    f"graph, keyvault <= {concurrency}" if not pool else "comparison",
                    max(total["graph"], total["keyvault"]) <= concurrency if not pool else None,
                )
            )
    print_table(
        f"New connections (each one a TCP + TLS handshake; warm: mean of {WARM_INVOCATIONS} invocations)",
        rows,
        [
            f"stand-ins add {LATENCY * 1000:.0f} ms per call so the workers overlap; the pools are warm once every "
            "worker has held a connection at the same time, which can take more than one invocation",
            "identity is plain http and asked only on the first invocation (tokens are cached)",
        ],
    )


if __name__ == "__main__":
    run()
