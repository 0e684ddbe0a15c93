"""The ledger's interface: a per-target lock that carries the target's record, and the record's reads.

Modelled on the persistence layer of AWS Lambda Powertools' idempotency utility: one interface,
an in-memory default (``MemoryLedger``: one worker process, no storage) and a durable backend
(``BlobLedger``: Azure Blob Storage, a blob lease as the lock, ETag-conditional writes). The sync
pipeline only ever talks to this interface.

Why a lock *and* a record: deliveries are at least once and unordered, and the same target can be
synced by two instances at once. The lock serialises the syncs of a target from "check the values"
until the push is answered; the record says which Key Vault versions (and their ``created`` times)
the last push used, so a sync whose values were read earlier than another's push re-reads instead
of putting an older token back.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from datetime import datetime
from typing import TYPE_CHECKING

from .records import LedgerRecord

if TYPE_CHECKING:
    from ..core.config import Target
    from ..core.retry import Deadline


class TargetHold(ABC):
    """One held per-target lock; ``record`` is the target's record as it stood when the hold began.

    Use with ``with``: leaving releases the lock, except after a push whose record could not be
    written (``keep_lock``): the lock is then left to expire, so the next holder has to wait for it
    and knows to read Key Vault again rather than trust a record that missed the last push.
    """

    def __init__(self, record: LedgerRecord, acquired_at: float, contended: bool) -> None:
        self.record = record
        self.acquired_at = acquired_at  # monotonic clock
        self.contended = contended  # another sync held the lock when this one asked for it
        self.keep_lock = False

    def must_reread(self, key: str, version: str, created: datetime | None, read_started: float) -> bool:
        """Whether a value read at ``read_started`` may be older than what the job holds now.

        True when the last recorded push used a version of this key created later than ours, and
        when this read began before the lock was held while another sync was holding it (that sync
        may have pushed a newer version, or failed to record it).
        """
        if self.is_behind(key, version, created):
            return True
        return (self.contended and read_started < self.acquired_at) or self._stale_in_process(read_started)

    def is_behind(self, key: str, version: str, created: datetime | None) -> bool:
        """The last push used a version of ``key`` created after this one: pushing this would go backwards."""
        pushed = self.record.pushed_version(key)
        return bool(
            pushed is not None
            and pushed.version != version
            and pushed.created is not None
            and created is not None
            and created < pushed.created
        )

    def _stale_in_process(self, read_started: float) -> bool:
        return False

    def note_push(self, read_finished: float) -> None:  # noqa: B027 - optional hook: only the in-process ledger uses it
        """A push used values whose reads ended at ``read_finished`` (monotonic)."""

    @abstractmethod
    def ensure_held(self, doing: str) -> None:
        """Raise ``LedgerUnavailable`` if the lock was lost (a lease that could not be renewed)."""

    @abstractmethod
    def save(self, record: LedgerRecord) -> None:
        """Write the record; conditional, so a concurrent writer's update is merged, never lost."""

    @abstractmethod
    def release(self) -> None: ...

    def __enter__(self) -> TargetHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Ledger(ABC):
    """Per-target locks and records. ``durable``: shared by every instance and process of the app."""

    durable: bool = False
    description: str = ""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], str] = {}
        self._jobs_lock = threading.Lock()

    @abstractmethod
    def hold(self, target: Target, deadline: Deadline, abandon: threading.Event | None = None) -> TargetHold:
        """Wait for the target's lock until ``deadline`` (or until ``abandon`` is set: the caller no longer
        needs it); raises ``TargetBusy`` (or ``LedgerUnavailable``)."""

    @abstractmethod
    def read(self, target: Target, deadline: Deadline) -> LedgerRecord:
        """The target's record without taking the lock (``status``, the reconcile run's plan)."""

    def drain(self, timeout: float = 10.0) -> None:  # noqa: B027 - a hook: only some backends defer work
        """Wait for work a backend finishes after a sync (the blob ledger's lease releases); tests use it."""

    def remember_job(self, target: str, sp_id: str, job_id: str) -> None:
        """A job id discovered by a sync, so that later expiry warnings can name it without a Graph call."""
        with self._jobs_lock:
            self._jobs[(target, sp_id)] = job_id

    def known_job(self, target: str, sp_id: str) -> str | None:
        with self._jobs_lock:
            return self._jobs.get((target, sp_id))
