"""Round trips per invocation: what a first (cold) and a warm invocation send to each service.

    python3 dev.py bench round_trips

A warm invocation for one target with one Key Vault secret: one Key Vault GET, validateCredentials,
GET secrets, PUT secrets and one job GET (quarantine resumption needs the status); no token request
and no Key Vault challenge. The first invocation adds at most one token request per resource (Graph,
Key Vault) and one challenge per vault, also when a fan-out of 8 targets starts all at once.
"""

from __future__ import annotations

from bench import App, Counts, RemoteStandins, Row, configure, print_table

WARM_EXPECTED = {
    ("keyvault", "secret"): 1,
    ("graph", "validate"): 1,
    ("graph", "get_secrets"): 1,
    ("graph", "put_secrets"): 1,
    ("graph", "get_job"): 1,
}


def _describe(delta: Counts) -> str:
    parts = [f"{server[0:2]}.{hop}={n}" for server, hops in sorted(delta.raw["hops"].items()) for hop, n in hops.items() if n]
    return ", ".join(parts)


def run() -> None:
    rows: list[Row] = []
    notes: list[str] = []
    with RemoteStandins() as standins:
        app = App()
        for targets in (1, 8):
            environ, document = standins.setup(targets)
            configure(environ, document, concurrency=8)
            app.reset()
            before = standins.counts()
            status, _ = app.post({})
            first = standins.counts() - before
            status_warm, _ = app.post({})
            warm = standins.counts() - before - first
            assert status == status_warm == 200, (status, status_warm)

            label = f"{targets} target{'s' if targets > 1 else ''}"
            rows.append(
                Row(f"first, {label}: token requests", str(first.tokens), "<= 2 (1 per resource)", first.tokens <= 2)
            )
            rows.append(
                Row(f"first, {label}: Key Vault challenges", str(first.challenges), "<= 1 (1 per vault)", first.challenges <= 1)
            )
            per_target = {key: value * targets for key, value in WARM_EXPECTED.items()}
            measured = {key: warm.hop(*key) for key in per_target}
            unexpected = warm.requests("graph") + warm.requests("keyvault") - sum(measured.values())
            ok = measured == per_target and unexpected == 0
            rows.append(
                Row(
                    f"warm, {label}: requests per target",
                    "/".join(str(round(measured[key] / targets, 2)) for key in per_target) + f" (+{unexpected} other)",
                    "1/1/1/1/1 (+0 other)",
                    ok,
                )
            )
            rows.append(
                Row(f"warm, {label}: tokens + challenges", str(warm.tokens + warm.challenges), "0", warm.tokens + warm.challenges == 0)
            )
            notes.append(f"first, {label}: {_describe(first)}, tokens={first.tokens}, challenges={first.challenges}")
    notes.insert(0, "requests per target: kv.secret/validate/get_secrets/put_secrets/get_job")
    print_table("Round trips per invocation (stand-ins in their own process)", rows, notes)


if __name__ == "__main__":
    run()
