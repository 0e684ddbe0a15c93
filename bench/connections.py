"""Connection reuse: new TCP+TLS connections per invocation, counted by the stand-ins.

    python3 dev.py bench connections

The Graph client and each Key Vault SecretClient use a keep-alive pool sized to the concurrency
bound (``shared.http_session``), so once the first invocation has filled the pools a warm invocation
opens no new connection to Graph or Key Vault. Side by side, at concurrency 16, the same app with
urllib3's default pool of 10 connections per host: the workers beyond 10 open a connection, and the
pool throws it away afterwards, on every invocation.
"""

from __future__ import annotations

from bench import RemoteApp, RemoteStandins, Row, print_table

WARM_INVOCATIONS = 3
LATENCY = 0.02  # enough that the workers overlap, so every pool slot is in use


def measure(standins: RemoteStandins, targets: int, concurrency: int, pool: str | None = None) -> dict[str, object]:
    environ, document = standins.setup(targets)
    with RemoteApp() as app:
        if pool:
            app.call("variant", pool=pool)
        app.configure(environ, document, concurrency=concurrency)
        standins.set_latency(LATENCY)
        before = standins.counts()
        first = app.post()
        after_first = standins.counts()
        warm = [app.post() for _ in range(WARM_INVOCATIONS)]
        after_warm = standins.counts()
    assert first["statuses"] == {"pushed": targets}, first
    assert all(w["statuses"] == {"pushed": targets} for w in warm), warm
    cold, hot = after_first - before, after_warm - after_first
    return {
        "first": {s: cold.connections(s) for s in ("graph", "keyvault", "identity")},
        "warm": {s: hot.connections(s) / WARM_INVOCATIONS for s in ("graph", "keyvault", "identity")},
    }


def _fmt(counts: dict[str, float]) -> str:
    return f"graph {counts['graph']:g}, keyvault {counts['keyvault']:g}, identity {counts['identity']:g}"


def run() -> None:
    rows: list[Row] = []
    with RemoteStandins() as standins:
        for targets, concurrency, pool in ((16, 8, None), (32, 16, None), (32, 16, "unsized")):
            result = measure(standins, targets, concurrency, pool)
            first, warm = result["first"], result["warm"]
            assert isinstance(first, dict) and isinstance(warm, dict)
            label = f"{targets} targets, concurrency {concurrency}" + (", urllib3 default pool (10)" if pool else "")
            rows.append(Row(f"{label}: first invocation", _fmt(first), f"graph, keyvault <= {concurrency}",
                            first["graph"] <= concurrency and first["keyvault"] <= concurrency))  # fmt: skip
            new = warm["graph"] + warm["keyvault"]
            rows.append(
                Row(
                    f"{label}: per warm invocation",
                    _fmt(warm),
                    "graph 0, keyvault 0" if not pool else "comparison",
                    new == 0 if not pool else None,
                )
            )
    print_table(
        f"New connections (each one a TCP + TLS handshake; mean of {WARM_INVOCATIONS} warm invocations)",
        rows,
        [f"stand-ins add {LATENCY * 1000:.0f} ms per call so the workers overlap; identity is plain http (tokens cached)"],
    )


if __name__ == "__main__":
    run()
