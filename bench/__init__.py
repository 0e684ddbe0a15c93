"""Benches for issue #5: cold start, round trips, fan-out, connection reuse, throttling.

Each bench is one command (``python3 dev.py bench NAME`` runs ``python -m bench.NAME``) and prints a
short table: what was measured, the ratio or count, its target, and PASS or MISS. Ratios are measured
within one run (both sides on the same machine at the same moment), because these machines are
noisy; benches always exit 0. The tests assert request and connection counts, never wall-clock time.

Helpers shared by the benches live here: the table, medians, :class:`RemoteApp` (the function app
in a fresh interpreter: a real cold start, its own RSS) and :class:`RemoteStandins` (the loopback
stand-ins in a process of their own, so that their CPU -- TLS, JSON, HTTP parsing on a 2-core
machine -- neither slows the app under measurement down nor counts towards its memory).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

ROOT = Path(__file__).resolve().parent.parent

#: Fast retries for the benches (production defaults in shared.core.retry.RetrySettings).
BENCH_SETTINGS = {
    "SYNC_RETRY_BACKOFF_SECONDS": "0.01",
    "SYNC_RETRY_BACKOFF_MAX_SECONDS": "0.05",
}


@dataclass
class Row:
    """One line of a bench table."""

    what: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "MISS")


def print_table(title: str, rows: Iterable[Row], notes: Iterable[str] = ()) -> None:
    rows = list(rows)
    headers = ("measurement", "measured", "target", "")
    widths = [max(len(h), *(len(c) for c in column)) for h, column in zip(
        headers,
        zip(*[(r.what, r.measured, r.target, r.verdict) for r in rows], strict=True),
        strict=True,
    )]  # fmt: skip
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print(line)
    for r in rows:
        print(
            "  ".join(
                c.ljust(w) for c, w in zip((r.what, r.measured, r.target, r.verdict), widths, strict=True)
            ).rstrip()
        )
    for note in notes:
        print(f"  note: {note}")
    sys.stdout.flush()


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def python_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child interpreter that imports the app from the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra or {})
    return env


def write_config(document: Mapping[str, Any], **overrides: Any) -> str:
    """Write a config to a file and return its path (a large document does not fit in one environment variable)."""
    handle, path = tempfile.mkstemp(prefix="bench-sync-config-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump({**document, **overrides}, out)
    return path


# --- Stand-ins in their own process ----------------------------------------------------------------


class _LineProcess:
    """A child interpreter running ``python -m MODULE``, driven by one JSON object per line each way."""

    module = ""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env=python_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self._process.pid

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} ended (exit code {self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.module}: {answer['error']}")
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self.call("quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteStandins(_LineProcess):
    """The loopback stand-ins served by ``python -m bench.standin_process``.

    The benches count on the stand-ins, so they run in another process: on a 2-core machine the
    stand-ins' own TLS and JSON work would otherwise compete with the app for one interpreter's GIL,
    and the app's peak RSS would include theirs.
    """

    module = "bench.standin_process"

    def setup(self, targets: int, **options: Any) -> tuple[dict[str, str], dict[str, Any]]:
        """A fresh estate of ``targets`` SCIM apps; returns (environment, SYNC_CONFIG document)."""
        answer = self.call("setup", targets=targets, **options)
        return answer["environ"], answer["config"]

    def counts(self) -> Counts:
        return Counts(self.call("counts"))

    def set_latency(self, seconds: float) -> None:
        self.call("latency", seconds=seconds)


class RemoteApp(_LineProcess):
    """The function app in a fresh interpreter (``python -m bench.app_process``): a real cold start."""

    module = "bench.app_process"

    def configure(self, environ: Mapping[str, str], document: Mapping[str, Any], **overrides: Any) -> None:
        """The stand-ins' environment and a ``SYNC_CONFIG`` file with ``overrides`` applied."""
        path = write_config(document, **overrides)
        self._configs.append(path)
        self.call("configure", environ={**environ, **BENCH_SETTINGS, "SYNC_CONFIG": path})

    def post(self, body: Any = None) -> dict[str, Any]:
        return self.call("post", body=body if body is not None else {})

    def close(self) -> None:
        super().close()
        for path in self._configs:
            with contextlib.suppress(OSError):
                os.unlink(path)

    _configs: list[str]

    def __init__(self) -> None:
        self._configs = []
        super().__init__()


class Counts:
    """A snapshot of the stand-ins' counters; subtract two snapshots for what happened in between."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = dict(raw)

    def __sub__(self, earlier: Counts) -> Counts:
        def minus(now: Any, before: Any) -> Any:
            if isinstance(now, dict):
                return {
                    k: minus(v, (before or {}).get(k, 0 if not isinstance(v, dict) else {})) for k, v in now.items()
                }
            return now - (before or 0)

        return Counts(minus(self.raw, earlier.raw))

    def hop(self, server: str, hop: str) -> int:
        return int(self.raw["hops"].get(server, {}).get(hop, 0))

    def requests(self, server: str) -> int:
        return int(sum(self.raw["hops"].get(server, {}).values()))

    def status(self, server: str, status: int) -> int:
        return int(self.raw["statuses"].get(server, {}).get(str(status), 0))

    def connections(self, server: str) -> int:
        return int(self.raw["connections"][server])

    @property
    def tokens(self) -> int:
        return int(self.raw["tokens"])

    @property
    def challenges(self) -> int:
        return int(self.raw["challenges"])

    @property
    def cpu(self) -> float:
        return float(self.raw["cpu"])


def serve_commands(handle: Callable[[dict[str, Any]], Any]) -> None:
    """The child-process side of ``RemoteApp`` / ``RemoteStandins``: one JSON command a line on stdin,
    one JSON answer a line on stdout, until ``{"op": "quit"}``. Errors go back to the bench, which raises."""
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "quit":
            print("{}", flush=True)
            break
        try:
            answer = handle(command)
        except Exception as exc:  # noqa: BLE001 - reported to the bench, which raises
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
