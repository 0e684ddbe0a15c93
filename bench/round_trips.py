"""Round trips per invocation: what a first (cold) and a warm invocation send to each service.

    python3 dev.py bench round_trips

A warm invocation for one target with one Key Vault secret: one Key Vault GET, validateCredentials,
GET secrets, PUT secrets and one job GET (quarantine resumption needs the status); no token request
and no Key Vault challenge. The first invocation of a fresh worker process adds at most one token
request per resource (Graph, Key Vault) and one challenge per vault, also when a fan-out of 8
targets starts all at once.
"""

from __future__ import annotations

from bench import Counts, RemoteApp, RemoteStandins, Row, print_table

#: (stand-in, hop) -> requests per target in a warm invocation.
WARM_EXPECTED = {
    ("keyvault", "secret"): 1,
    ("graph", "validate"): 1,
    ("graph", "get_secrets"): 1,
    ("graph", "put_secrets"): 1,
    ("graph", "get_job"): 1,
}


def _describe(delta: Counts) -> str:
    hops = [f"{server}.{hop}={n}" for server, hops in sorted(delta.raw["hops"].items()) for hop, n in hops.items() if n]
    return ", ".join(hops)


def run() -> None:
    rows: list[Row] = []
    notes = ["requests per target, in order: keyvault GET / validateCredentials / GET secrets / PUT secrets / GET job"]
    with RemoteStandins() as standins:
        for targets in (1, 8):
            environ, document = standins.setup(targets)
            with RemoteApp() as app:  # a fresh worker process: nothing cached
                app.configure(environ, document, concurrency=8)
                before = standins.counts()
                first_answer = app.post()
                after_first = standins.counts()
                warm_answer = app.post()
                first, warm = after_first - before, standins.counts() - after_first
            assert first_answer["status"] == warm_answer["status"] == 200, (first_answer, warm_answer)

            label = f"{targets} target{'s' if targets > 1 else ''}"
            rows.append(Row(f"first, {label}: token requests", str(first.tokens), "<= 2 (1 per resource)",
                            first.tokens <= 2))  # fmt: skip
            rows.append(Row(f"first, {label}: Key Vault challenges", str(first.challenges), "<= 1 (1 per vault)",
                            first.challenges <= 1))  # fmt: skip
            expected = {key: per_target * targets for key, per_target in WARM_EXPECTED.items()}
            measured = {key: warm.hop(*key) for key in expected}
            other = warm.requests("graph") + warm.requests("keyvault") - sum(measured.values())
            rows.append(
                Row(
                    f"warm, {label}: requests per target",
                    "/".join(f"{measured[key] / targets:g}" for key in expected) + f" (+{other} other)",
                    "1/1/1/1/1 (+0 other)",
                    measured == expected and other == 0,
                )
            )
            extra = warm.tokens + warm.challenges
            rows.append(Row(f"warm, {label}: token requests + challenges", str(extra), "0", extra == 0))
            notes.append(f"first, {label}: {_describe(first)}; challenges={first.challenges}")
    print_table("Round trips per invocation (app and stand-ins each in their own process)", rows, notes)


if __name__ == "__main__":
    run()
