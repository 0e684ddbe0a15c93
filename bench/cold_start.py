"""Cold start: what importing the function app costs, and the first invocation against a warm one.

    python3 dev.py bench cold_start

1. Import time of ``function_app`` over ``import azure.functions`` alone, each in fresh interpreters
   (alternating, several runs, median): the host imports azure.functions anyway, so the ratio is
   what the app adds. Target <= 1.3x. A fresh interpreter also reports which heavy modules the
   import loaded (target: none of azure.identity, azure.keyvault, azure.core, requests, msal, urllib3).
2. Time to response of the first invocation of a fresh worker process (imports the SDKs, builds the
   credential and clients, fetches tokens, answers the Key Vault challenge, opens TLS connections)
   against a warm one, one target, stand-ins in their own process without added latency. Reported
   only: the first invocation pays for work the import deliberately defers.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench import ROOT, RemoteApp, RemoteStandins, Row, median, print_table, python_env

RUNS = 9
WARM_INVOCATIONS = 5

_PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
seconds = time.perf_counter() - started
heavy = ("azure.identity", "azure.keyvault", "azure.core", "requests", "msal", "urllib3")
print(json.dumps({{"seconds": seconds, "heavy": sorted(m for m in heavy if m in sys.modules)}}))
"""


def import_in_fresh_interpreter(module: str) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output))


def run() -> None:
    for module in ("azure.functions", "function_app"):  # compile .pyc files outside the measurement
        import_in_fresh_interpreter(module)
    baseline: list[float] = []
    app: list[float] = []
    heavy: set[str] = set()
    for _ in range(RUNS):
        baseline.append(float(import_in_fresh_interpreter("azure.functions")["seconds"]))  # type: ignore[arg-type]
        probe = import_in_fresh_interpreter("function_app")
        app.append(float(probe["seconds"]))  # type: ignore[arg-type]
        heavy.update(probe["heavy"])  # type: ignore[arg-type]
    import_ratio = median(app) / median(baseline)

    with RemoteStandins() as standins:
        environ, document = standins.setup(1)
        with RemoteApp() as process:
            process.call("import")
            process.configure(environ, document)
            first = process.post()
            warm = [process.post() for _ in range(WARM_INVOCATIONS)]
        with RemoteApp() as process:  # the same first invocation with the SDKs imported beforehand
            process.call("import")
            preload = float(process.call("preload")["seconds"])
            process.configure(environ, document)
            first_preloaded = process.post()
    assert first["status"] == first_preloaded["status"] == 200, (first, first_preloaded)
    assert all(w["status"] == 200 for w in warm), warm
    warm_seconds = median(float(w["seconds"]) for w in warm)
    first_ratio = float(first["seconds"]) / warm_seconds

    rows = [
        Row("import azure.functions (median)", f"{median(baseline) * 1000:.0f} ms"),
        Row("import function_app (median)", f"{median(app) * 1000:.0f} ms"),
        Row("function_app / azure.functions", f"{import_ratio:.2f}x", "<= 1.3x", import_ratio <= 1.3),
        Row("heavy modules loaded by the import", ", ".join(sorted(heavy)) or "none", "none", not heavy),
        Row("first invocation, fresh process", f"{float(first['seconds']) * 1000:.0f} ms"),
        Row("  SDK imports alone (another process)", f"{preload * 1000:.0f} ms"),
        Row("  first invocation, SDKs pre-imported", f"{float(first_preloaded['seconds']) * 1000:.0f} ms"),
        Row(f"warm invocation (median of {WARM_INVOCATIONS})", f"{warm_seconds * 1000:.0f} ms"),
        Row("first / warm", f"{first_ratio:.1f}x", "report only"),
    ]
    print_table(
        f"Cold start ({RUNS} fresh interpreters each, alternating)",
        rows,
        ["the first invocation imports the SDKs, gets 2 tokens, answers 1 Key Vault challenge and opens 3 connections"],
    )


if __name__ == "__main__":
    run()
