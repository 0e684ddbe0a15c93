"""The loopback stand-ins in a process of their own, driven by the benches over stdin/stdout.

One JSON object per line in, one per line out (see ``bench.RemoteStandins``). Operations:

- ``setup``: a fresh estate of N SCIM targets (``targets``), each with its own Key Vault secret
  unless ``shared_secret``; ``quarantined`` of them have their job in quarantine; ``reverse`` lists
  them in the config from the last to the first (secret names then sort against the config order). Answers the
  environment the app needs and its ``SYNC_CONFIG`` document.
- ``latency``: seconds added to every request on every stand-in.
- ``counts``: requests per hop and status, connections accepted, token issuances, challenges, and
  the CPU seconds this process has used.
- ``storm``: from the ``after``-th Graph request on, Graph answers every request 429 with
  ``Retry-After: retry_after`` for ``seconds`` (a throttling window measured on the stand-in's clock).
- ``pushed``: how many targets now hold the current Key Vault token.
- ``storage``: start Azurite behind a counting proxy (once) and answer the app settings that point the
  app's ledger at a new container; from then on ``counts`` and ``latency`` include it.
- ``quit``.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

from bench import serve_commands
from standins import Fault, StandinStack
from standins.azurite import Azurite
from standins.scenario import Scenario
from standins.storage import StorageProxy


class _Storm:
    """A time window of 429s on every Graph hop, starting at a given request."""

    def __init__(self, stack: StandinStack, after: int, seconds: float, retry_after: str) -> None:
        self._original = stack.graph._take_fault
        self._lock = threading.Lock()
        self._countdown = after
        self._seconds = seconds
        self._fault = Fault.status(429, retry_after=retry_after)
        self._ends: float | None = None

    def take_fault(self, hop: str, request: Any = None) -> Fault | None:
        with self._lock:
            if self._ends is None:
                if self._countdown > 0:
                    self._countdown -= 1
                    return self._original(hop, request)
                self._ends = time.monotonic() + self._seconds
            if time.monotonic() < self._ends:
                return self._fault
        return self._original(hop, request)


class StandinProcess:
    def __init__(self) -> None:
        self.stack = StandinStack().start()
        self.scenario = Scenario(self.stack)
        self.azurite: Azurite | None = None
        self.proxy: StorageProxy | None = None

    def storage(self) -> dict[str, Any]:
        if self.azurite is None:
            self.azurite = Azurite().start()
            self.proxy = StorageProxy(self.azurite.endpoint).start()
        assert self.proxy is not None
        self.proxy.latency = self.stack.graph.latency
        return {
            "environ": {
                "AzureWebJobsStorage": self.proxy.connection_string,
                "SYNC_LEDGER_CONTAINER": f"bench-{uuid.uuid4().hex[:12]}",
            }
        }

    def _servers(self) -> dict[str, Any]:
        servers: dict[str, Any] = {
            "identity": self.stack.identity,
            "keyvault": self.stack.keyvault,
            "graph": self.stack.graph,
        }
        if self.proxy is not None:
            servers["storage"] = self.proxy
        return servers

    def setup(
        self, targets: int, shared_secret: bool = False, quarantined: int = 0, reverse: bool = False
    ) -> dict[str, Any]:
        self.stack.reset()
        self.stack.graph.__dict__.pop("_take_fault", None)
        self.scenario = Scenario(self.stack)
        for index in reversed(range(targets)) if reverse else range(targets):
            self.scenario.add_target(
                f"target-{index:04d}",
                secret_name="shared-token" if shared_secret else None,
                job_status="Quarantine" if index < quarantined else "Active",
            )
        return {"environ": self.stack.environ(), "config": self.scenario.config_document()}

    def counts(self) -> dict[str, Any]:
        servers = self._servers()
        hops: dict[str, dict[str, int]] = {}
        statuses: dict[str, dict[str, int]] = {}
        for name, server in servers.items():
            records = server.requests
            hops[name] = dict(Counter(r.hop for r in records))
            statuses[name] = dict(Counter(str(r.status) for r in records))
        return {
            "hops": hops,
            "statuses": statuses,
            "connections": {name: server.connections_opened for name, server in servers.items()},
            "tokens": self.stack.identity.token_requests(),
            "challenges": self.stack.keyvault.challenges_issued,
            "cpu": time.process_time(),
        }

    def storm(self, after: int, seconds: float, retry_after: str) -> dict[str, Any]:
        self.stack.graph._take_fault = _Storm(self.stack, after, seconds, retry_after).take_fault  # type: ignore[method-assign]
        return {}

    def pushed(self) -> dict[str, Any]:
        done = sum(
            self.scenario.job_token(name) == self.scenario.current_token(setup.secret_name)
            for name, setup in self.scenario.targets.items()
        )
        return {"pushed": done, "targets": len(self.scenario.targets)}

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command.pop("op")
        if op == "setup":
            return self.setup(**command)
        if op == "latency":
            self.stack.set_latency(float(command["seconds"]))
            if self.proxy is not None:
                self.proxy.latency = float(command["seconds"])
            return {}
        if op == "storage":
            return self.storage()
        if op == "counts":
            return self.counts()
        if op == "storm":
            return self.storm(int(command["after"]), float(command["seconds"]), str(command["retry_after"]))
        if op == "pushed":
            return self.pushed()
        raise ValueError(f"unknown operation {op!r}")


def main() -> int:
    process = StandinProcess()
    try:
        serve_commands(process.handle)
    finally:
        process.stack.stop()
        if process.proxy is not None:
            process.proxy.stop()
        if process.azurite is not None:
            process.azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
