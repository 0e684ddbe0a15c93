"""A test's view of one worker process: the stand-in estate it works on, its config, and the canary check.

The worker process reads ``SYNC_CONFIG`` once per process from its environment, so the suite gives it a
*path* (a documented form of the setting) and each test writes that file; the app re-reads the document when
the file's modification time changes, and :meth:`Estate.write_config` moves it forward explicitly so that two
writes within one clock tick are never mistaken for one.

:meth:`Estate.leaks` is the canary check of the conformance suite: every planted secret value and the function
key the host passes in the query (``code``) must appear in none of what the worker sent the host (responses and
``RpcLog`` records, including those of indexing) and none of what the worker process printed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standins.scenario import Scenario, canary
from tests.conformance.host import FunctionsHost, HttpResult, InvocationResult


@dataclass
class Estate:
    host: FunctionsHost
    scenario: Scenario
    config_path: Path
    function_key: str = field(default_factory=lambda: canary("functionkey"))
    _mtime_ns: int = 0

    def configure(self, **overrides: Any) -> dict[str, Any]:
        document = self.scenario.config_document(**overrides)
        self.write_config(json.dumps(document))
        return document

    def write_config(self, text: str) -> None:
        previous = self.config_path.stat().st_mtime_ns if self.config_path.exists() else 0
        self.config_path.write_text(text, encoding="utf-8")
        self._mtime_ns = max(previous, self._mtime_ns, self.config_path.stat().st_mtime_ns) + 1_000_000_000
        os.utime(self.config_path, ns=(self._mtime_ns, self._mtime_ns))

    # --- calls as the host makes them -------------------------------------------------------------------

    def post(
        self,
        body: Any = None,
        *,
        raw: bytes | None = None,
        method: str = "POST",
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        """``POST /api/sync?code=<function key>`` (JSON body unless ``raw``)."""
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        sent = {"Content-Type": "application/json"} if headers is None else headers
        return self.host.http(method, data, headers=sent, query={"code": self.function_key})

    def fire(self, event: dict[str, Any]) -> InvocationResult:
        return self.host.event_grid(event)

    # --- the canary check ---------------------------------------------------------------------------------

    def leaks(self) -> list[tuple[str, str]]:
        haystacks = {
            "worker responses and RpcLog records": "\n".join(self.host.transcript()),
            "worker stdout/stderr": self.host.console(),
        }
        values = {*self.scenario.canary_values, self.function_key}
        return [(v[:14] + "...", where) for v in sorted(values) for where, text in haystacks.items() if v in text]
