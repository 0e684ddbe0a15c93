"""Per-target ordering inside one worker process.

Deliveries are at least once and unordered, and two invocations can sync the same target at the
same time. Each target gets a lock held from "check the values" to "pushed", and the ledger
remembers when the values of the last push were read. A later push must use values read after
that moment (reads of "latest" only move forward), so a slow invocation holding values read
earlier re-reads them instead of putting an older token back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ..core.errors import TargetBusy
from ..core.retry import Deadline


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_read_finished: float = float("-inf")


class PushLedger:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._guard = threading.Lock()
        self._jobs: dict[tuple[str, str], str] = {}

    def remember_job(self, target: str, sp_id: str, job_id: str) -> None:
        """A job id discovered by a sync, so that later expiry warnings can name it without a Graph call."""
        with self._guard:
            self._jobs[(target, sp_id)] = job_id

    def known_job(self, target: str, sp_id: str) -> str | None:
        with self._guard:
            return self._jobs.get((target, sp_id))

    def _entry(self, target: str, sp_id: str) -> _Entry:
        with self._guard:
            return self._entries.setdefault((target, sp_id), _Entry())

    def hold(self, target: str, sp_id: str, deadline: Deadline) -> TargetLease:
        entry = self._entry(target, sp_id)
        if not entry.lock.acquire(timeout=max(deadline.remaining(), 0.0)):
            raise TargetBusy(f"another sync of target '{target}' was still running when the deadline passed")
        return TargetLease(entry)


class TargetLease:
    """Held while one sync of one target checks and pushes; release with ``with``."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def is_stale(self, read_started: float) -> bool:
        """Values read before the last pushed ones were read may be older than what the job holds."""
        return read_started < self._entry.last_read_finished

    def record_push(self, read_finished: float) -> None:
        self._entry.last_read_finished = max(self._entry.last_read_finished, read_finished)

    def __enter__(self) -> TargetLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self._entry.lock.release()
