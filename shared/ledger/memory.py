"""The embedded default: locks and records inside one worker process.

Used when no storage is configured (the sandbox, local runs, the CLI on a laptop). Each target gets
a lock held from "check the values" to "pushed", and the hold remembers when the values of the
last push were read: a later push must use values read after that moment (reads of "latest" only
move forward), so a slow invocation holding values read earlier re-reads them instead of putting an
older token back. Nothing survives the process; other processes and instances are not coordinated
(that is what ``BlobLedger`` is for).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.errors import TargetBusy
from .base import Ledger, TargetHold
from .records import LedgerRecord

if TYPE_CHECKING:
    from ..core.config import Target
    from ..core.retry import Deadline


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_read_finished: float = float("-inf")
    record: LedgerRecord | None = None


class MemoryLedger(Ledger):
    durable = False
    description = "in-process (no storage configured)"

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._guard = threading.Lock()

    def _entry(self, target: Target) -> _Entry:
        with self._guard:
            return self._entries.setdefault((target.name, target.service_principal_id), _Entry())

    def hold(self, target: Target, deadline: Deadline, abandon: threading.Event | None = None) -> MemoryHold:
        entry = self._entry(target)
        contended = not entry.lock.acquire(blocking=False)
        if contended:
            while not entry.lock.acquire(timeout=min(0.05, max(deadline.remaining(), 0.0))):
                if deadline.expired or (abandon is not None and abandon.is_set()):
                    raise TargetBusy(
                        f"another sync of target '{target.name}' was still running when the deadline passed"
                    )
        record = entry.record or LedgerRecord.empty(target.name, target.service_principal_id)
        return MemoryHold(entry, record, time.monotonic(), contended)

    def read(self, target: Target, deadline: Deadline) -> LedgerRecord:
        entry = self._entry(target)
        with self._guard:
            return entry.record or LedgerRecord.empty(target.name, target.service_principal_id)


class MemoryHold(TargetHold):
    def __init__(self, entry: _Entry, record: LedgerRecord, acquired_at: float, contended: bool) -> None:
        super().__init__(record, acquired_at, contended)
        self._entry = entry
        self._released = False

    def _stale_in_process(self, read_started: float) -> bool:
        """Values read before the last pushed ones were read may be older than what the job holds."""
        return read_started < self._entry.last_read_finished

    def note_push(self, read_finished: float) -> None:
        self._entry.last_read_finished = max(self._entry.last_read_finished, read_finished)

    def ensure_held(self, doing: str) -> None:
        """A process-local lock cannot be lost."""

    def save(self, record: LedgerRecord) -> None:
        self._entry.record = record
        self.record = record

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._entry.lock.release()
