"""The function app in a fresh interpreter of its own, driven by the benches over stdin/stdout.

A fresh process is what a cold start is: nothing imported, no credential, no token, no Key Vault
challenge (azure-keyvault caches challenges per process), no pooled connection. Its peak RSS
(``ru_maxrss``) is the app's alone, because the stand-ins run in another process.

One JSON object per line in, one per line out. Operations:

- ``import``: import ``function_app``; answers the seconds it took and which heavy modules it loaded.
- ``preload``: import what the first invocation would import (to split its time); answers the seconds.
- ``configure``: ``environ`` entries to set (the stand-ins' environment, ``SYNC_CONFIG``, settings).
- ``post``: call the ``sync`` HTTP function with ``body``; answers the status, the seconds until the
  response, and the per-target statuses and error codes.
- ``reset``: forget the worker state (the next invocation builds clients again; the SDKs stay imported).
- ``variant``: swap in a bench-only variant for a side-by-side comparison (``gate``: ``per_worker``
  gives every worker thread its own throttle gate, ``no_probe`` lets every waiting worker go the
  moment the gate reopens; ``pool``: ``unsized`` keeps urllib3's default pool of 10 connections per
  host).
- ``drain``: wait for work the ledger finishes after an answer (lease releases), so counts are complete.
- ``rss``: peak resident set size so far, in MB, and the CPU seconds used so far.
- ``quit``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import resource
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench import serve_commands

#: Modules a cold import of function_app must not load (they load on the first invocation).
HEAVY_MODULES = ("azure.identity", "azure.keyvault", "azure.core", "requests", "msal", "urllib3")


#: What the first invocation imports (the product modules behind AppState.service() and the SDKs).
PRELOAD_MODULES = (
    "shared.triggers.service",
    "requests",
    "azure.identity",
    "azure.keyvault.secrets",
    "azure.core.pipeline.transport",
)


class _PerWorkerGate:
    """Bench-only: a throttle gate per worker thread, i.e. every worker honours only its own 429s."""

    def __init__(self) -> None:
        from shared.core.retry import ThrottleGate

        self._make = ThrottleGate
        self._local = threading.local()

    def _gate(self) -> Any:
        if not hasattr(self._local, "gate"):
            self._local.gate = self._make()
        return self._local.gate

    def close_for(self, seconds: float) -> None:
        self._gate().close_for(seconds)

    def wait_time(self) -> float:
        return float(self._gate().wait_time())

    def wait(self, deadline: Any, doing: str) -> None:
        self._gate().wait(deadline, doing)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gate(), name)


def _gate_without_probe() -> type:
    """Bench-only: the shared gate as it was before probing: everyone goes the moment it reopens."""
    from shared.core.retry import ThrottleGate

    class GateWithoutProbe(ThrottleGate):
        def wait(self, deadline: Any, doing: str) -> None:
            while (delay := self.wait_time()) > 0:
                deadline.sleep(delay, doing)

    return GateWithoutProbe


class _HostContext:
    """What the Functions host hands a function as ``context``: only the invocation id is read."""

    def __init__(self) -> None:
        import uuid

        self.invocation_id = str(uuid.uuid4())


class AppProcess:
    def __init__(self) -> None:
        self._sync: Any = None

    def do_import(self) -> dict[str, Any]:
        started = time.perf_counter()
        import function_app

        seconds = time.perf_counter() - started
        functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
        self._sync = functions["sync"]
        heavy = sorted({m for m in sys.modules for h in HEAVY_MODULES if m == h or m.startswith(h + ".")})
        return {"seconds": seconds, "heavy": heavy}

    def post(self, body: Any) -> dict[str, Any]:
        import azure.functions as func

        if self._sync is None:
            self.do_import()
        request = func.HttpRequest(
            method="POST",
            url="https://localhost/api/sync",
            headers={"content-type": "application/json"},
            params={},
            route_params={},
            body=b"" if body is None else json.dumps(body).encode(),
        )
        started = time.perf_counter()
        response = self._sync(request, _HostContext())
        seconds = time.perf_counter() - started
        answer = json.loads(response.get_body() or b"null")
        results = answer.get("results", []) if isinstance(answer, dict) else []
        return {
            "status": response.status_code,
            "seconds": seconds,
            "statuses": dict(Counter(r["status"] for r in results)),
            "errors": dict(Counter(r["error"]["code"] for r in results if r.get("error"))),
            "failure": answer.get("error") if isinstance(answer, dict) else None,
        }

    def variant(self, gate: str | None = None, pool: str | None = None) -> dict[str, Any]:
        if gate in ("per_worker", "no_probe"):
            import shared.clients.graph

            shared.clients.graph.ThrottleGate = _PerWorkerGate if gate == "per_worker" else _gate_without_probe()  # type: ignore[misc,assignment]
        if pool == "unsized":
            import shared.clients.http_session

            sized = shared.clients.http_session.pooled_session
            shared.clients.http_session.pooled_session = lambda pool_size: sized(10)
        self.reset()
        return {}

    def reset(self) -> dict[str, Any]:
        if "function_app" in sys.modules:
            sys.modules["function_app"].state.reset()
        return {}

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.pop("op")
        if op == "import":
            return self.do_import()
        if op == "preload":
            started = time.perf_counter()
            for module in PRELOAD_MODULES:
                importlib.import_module(module)
            return {"seconds": time.perf_counter() - started}
        if op == "configure":
            os.environ.update(command["environ"])
            return {}
        if op == "post":
            return self.post(command.get("body"))
        if op == "reset":
            return self.reset()
        if op == "variant":
            return self.variant(**command)
        if op == "drain":
            if "function_app" in sys.modules:
                sys.modules["function_app"].state.service().worker.ledger.drain()
            return {}
        if op == "rss":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return {"mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}
        raise ValueError(f"unknown operation {op!r}")


def main() -> int:
    logging.disable(logging.CRITICAL)  # outcomes come back in the answers; logs would only clutter the table
    serve_commands(AppProcess().handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
