"""One sync of one target: resolve -> validate -> merge -> push -> resume quarantine.

The order is the safety argument. Nothing is pushed unless validateCredentials answered 2xx (or
the config explicitly skips validation). The push carries every stored key the config does not
manage, because Microsoft does not say whether PUT replaces or merges. A failed resume never undoes
a push. A push holds the target's ledger lock (``shared.ledger``) from checking its values until it
is answered, and goes out only with values at least as new as those the ledger says were pushed.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..clients.graph import GraphCall, GraphClient, StoredSecret, SyncJob
from ..clients.keyvault import ResolvedSecret, SecretResolver
from ..core.config import KeyVaultSource, LiteralSource, SyncConfig, Target
from ..core.errors import InternalFailure, KeyVaultVersionBehind, SyncError
from ..core.redaction import Redactor, SecretValue
from ..core.results import ResultWarning, TargetResult
from ..core.retry import Deadline
from ..ledger.base import Ledger, TargetHold
from ..ledger.records import LastAttempt, LastPush, PushedVersion

logger = logging.getLogger("shared.sync.pipeline")


@dataclass(frozen=True)
class Invocation:
    """What every step of one invocation shares."""

    id: str
    deadline: Deadline
    redactor: Redactor
    dry_run: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
    trigger: str = "http"


@dataclass(frozen=True)
class _Credentials:
    values: dict[str, SecretValue]
    resolved: dict[str, ResolvedSecret]  # the Key Vault keys only
    read_finished: float

    @property
    def versions(self) -> dict[str, PushedVersion]:
        return {k: PushedVersion(r.vault, r.name, r.version, r.created_on) for k, r in self.resolved.items()}


class TargetPipeline:
    def __init__(
        self,
        config: SyncConfig,
        graph: GraphClient,
        resolver: SecretResolver,
        ledger: Ledger,
        invocation: Invocation,
        side: Executor,
    ) -> None:
        self.config = config
        self.graph = graph
        self.resolver = resolver
        self.ledger = ledger
        self.invocation = invocation
        #: Runs what a sync can do ahead of time: the lock, the stored secrets, the job (see ``_sync``).
        self.side = side

    def run(self, target: Target) -> TargetResult:
        started = time.monotonic()
        result = TargetResult(
            target=target.name, service_principal_id=target.service_principal_id, job_id=target.job_id
        )
        call = GraphCall(self.invocation.deadline, self.invocation.redactor, result.graph_request_ids)
        if self.invocation.dry_run:  # pushes nothing, so it needs no lock and leaves no record
            self._guarded(target, result, lambda: self._sync(target, result, call, None))
        else:
            self._guarded(target, result, lambda: self._locked_sync(target, result, call))
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result

    def _guarded(self, target: Target, result: TargetResult, step: Callable[[], None]) -> None:
        """Turn what ``step`` raises into the target's failure: one target never stops the others."""
        try:
            step()
        except SyncError as error:
            result.status = "failed"
            result.error = error
        except Exception as exc:  # noqa: BLE001 - one target's bug must not stop the others
            frames = "".join(traceback.format_tb(exc.__traceback__)[-3:])
            logger.error("unexpected %s in target %s\n%s", type(exc).__name__, target.name, frames)
            result.status = "failed"
            result.error = InternalFailure(f"unexpected {type(exc).__name__} while syncing; see the logs")

    def _locked_sync(self, target: Target, result: TargetResult, call: GraphCall) -> None:
        """The lock is asked for at once and waited for only before the values are checked against the
        record (after validation, which has no side effect); it is held until the push is answered."""
        abandon = threading.Event()
        hold_future = self.side.submit(self.ledger.hold, target, self.invocation.deadline, abandon)
        pushed: list[_Credentials] = []
        try:
            self._guarded(target, result, lambda: self._sync(target, result, call, hold_future, pushed))
        finally:
            _let_unanswered_pushes_land(call)
            abandon.set()  # a sync that failed before it needed the lock stops waiting for it
        try:
            hold = hold_future.result()
        except SyncError:
            return  # never held (busy, abandoned, storage down): nothing to record; the result says why
        with hold:
            self._record(target, result, hold, pushed[0] if pushed else None)

    def _record(self, target: Target, result: TargetResult, hold: TargetHold, pushed: _Credentials | None) -> None:
        """Write what this sync did into the target's record (one conditional write), still under the lock."""
        now = self.invocation.now()
        record = hold.record
        attempt = LastAttempt(
            at=now,
            invocation_id=self.invocation.id,
            trigger=self.invocation.trigger,
            outcome=result.status,
            error_code=result.error.code if result.error else None,
        )
        changes: dict[str, object] = {
            "job_id": result.job_id or record.job_id,
            "job_status": result.job_status or record.job_status,
        }
        if pushed is not None:
            changes["last_push"] = LastPush(at=now, invocation_id=self.invocation.id, versions=pushed.versions)
        try:
            hold.save(record.with_attempt(attempt, **changes))
        except SyncError as error:
            if pushed is None:
                result.warnings.append(
                    ResultWarning(
                        "LedgerWriteFailed", f"the outcome could not be recorded in the ledger ({error.code})"
                    )
                )
                return
            hold.keep_lock = True  # let it expire: the next holder then re-reads Key Vault instead of trusting us
            result.warnings.append(
                ResultWarning(
                    "LedgerWriteFailed",
                    f"the credentials were pushed, but the ledger could not record it ({error.code}: "
                    f"{error.message}); the delivery is retried so that the record catches up",
                    retryable=True,
                    details={"cause": error.code},
                )
            )

    def _sync(
        self,
        target: Target,
        result: TargetResult,
        call: GraphCall,
        hold_future: Future[TargetHold] | None,
        pushed: list[_Credentials] | None = None,
    ) -> None:
        """Key Vault read -> validateCredentials -> PUT: the only calls that wait for one another.

        The stored secrets, the job (its id when discovered, its status when quarantine resumption
        may need it) and the lock are asked for at once, while the credentials are read and validated.
        They are only waited for where they are needed; when validation fails they are simply dropped,
        so nothing extra is pushed or started.
        """
        sp_id = target.service_principal_id
        stored_future = self.side.submit(self.graph.get_secrets, sp_id, call)
        jobs_future = None if target.job_id else self.side.submit(self.graph.only_job, sp_id, call)
        job_future = (
            self.side.submit(self.graph.get_job, sp_id, target.job_id, call)
            if target.job_id and target.resume_quarantined and hold_future is not None
            else None
        )
        credentials = self._credentials(target)
        result.versions = {key: r.version for key, r in credentials.resolved.items()}
        job_id, listed_job = self._job(target, jobs_future)
        result.job_id = job_id
        if listed_job is not None:
            result.job_status = listed_job.status_code
        self._validate(target, job_id, credentials, result, call)

        hold: TargetHold | None = None
        if hold_future is not None:
            hold = hold_future.result()
            fresher = self._fresher(target, credentials, hold)
            if fresher is not None:  # values that may be older than the last push: read again, validate again
                credentials = fresher
                result.versions = {key: r.version for key, r in credentials.resolved.items()}
                self._validate(target, job_id, credentials, result, call)

        body, masked = merge_secrets(credentials.values, self._await(stored_future))
        if masked:
            result.warnings.append(
                ResultWarning(
                    "UnmanagedMaskedKeys",
                    f"stored keys {', '.join(sorted(masked))} are not managed here and Graph masks their values, so "
                    "they cannot be carried along; manage them in the config to be safe if Graph replaces the set",
                    details={"keys": sorted(masked)},
                )
            )
        if hold is None:
            result.status = "validated"
            return

        self.invocation.deadline.check("pushing the credentials")
        hold.ensure_held("pushing the credentials")
        self.graph.put_secrets(sp_id, body, call)
        hold.note_push(credentials.read_finished)
        if pushed is not None:
            pushed.append(credentials)
        result.status = "pushed"
        if target.resume_quarantined:
            self._resume(target, job_id, listed_job or job_future, result, call)

    def _await(self, future: Future[Any]) -> Any:
        """A read started ahead of the credentials: its error is scrubbed again, now that every value is known."""
        try:
            return future.result()
        except SyncError as error:
            raise error.scrubbed(self.invocation.redactor.scrub) from None

    def _validate(
        self, target: Target, job_id: str, credentials: _Credentials, result: TargetResult, call: GraphCall
    ) -> None:
        if self.config.validation_required:
            self.graph.validate_credentials(
                target.service_principal_id, job_id, credentials.values, target.template_id, call
            )
        elif not any(w.code == "ValidationSkipped" for w in result.warnings):
            result.warnings.append(
                ResultWarning(
                    "ValidationSkipped",
                    'pushed without validateCredentials ("validation": "skip"); the job reports bad credentials only '
                    "on its next cycle",
                )
            )

    def _credentials(
        self, target: Target, refresh: frozenset[str] = frozenset(), hold: TargetHold | None = None
    ) -> _Credentials:
        """The target's values; the keys in ``refresh`` are read again from Key Vault (never pushed backwards)."""
        values: dict[str, SecretValue] = {}
        resolved_by_key: dict[str, ResolvedSecret] = {}
        read_finished = float("-inf")
        for key, source in target.secrets.items():
            if isinstance(source, LiteralSource):
                values[key] = source.value
                continue
            assert isinstance(source, KeyVaultSource)
            if key in refresh:
                resolved = self.resolver.refresh(source.ref)
                if hold is not None and hold.is_behind(key, resolved.version, resolved.created_on):
                    raise KeyVaultVersionBehind(
                        f"Key Vault still serves version {resolved.version} of secret '{resolved.name}', created "
                        "before the version already pushed to this job; nothing was pushed (it would go backwards)"
                    )
            else:
                resolved = self.resolver.get(source.ref)
            values[key] = resolved.value
            resolved_by_key[key] = resolved
            read_finished = max(read_finished, resolved.read_finished)
        self.invocation.redactor.add(values.values())
        return _Credentials(values, resolved_by_key, read_finished)

    def _fresher(self, target: Target, credentials: _Credentials, hold: TargetHold) -> _Credentials | None:
        """Read again what may be older than the last push (see ``TargetHold.must_reread``); None if nothing."""
        stale = frozenset(
            key
            for key, r in credentials.resolved.items()
            if hold.must_reread(key, r.version, r.created_on, r.read_started)
        )
        return self._credentials(target, stale, hold) if stale else None

    def _job(self, target: Target, jobs_future: Future[SyncJob] | None) -> tuple[str, SyncJob | None]:
        if target.job_id or jobs_future is None:
            assert target.job_id
            return target.job_id, None
        job = self._await(jobs_future)
        self.ledger.remember_job(target.name, target.service_principal_id, job.id)
        return job.id, job

    def _resume(
        self,
        target: Target,
        job_id: str,
        known: SyncJob | Future[SyncJob] | None,
        result: TargetResult,
        call: GraphCall,
    ) -> None:
        """Start the job only if it is in quarantine: never an Active or Paused one.

        ``known``: the job as listed at discovery, or its read started with the sync (under the same lock).
        """
        try:
            if isinstance(known, SyncJob):
                job = known
            elif known is not None:
                job = self._await(known)
            else:
                job = self.graph.get_job(target.service_principal_id, job_id, call)
            result.job_status = job.status_code
            if not job.quarantined:
                return
            result.job_started = self.graph.start_job(target.service_principal_id, job_id, call)
        except SyncError as error:
            result.warnings.append(
                ResultWarning(
                    "JobStartFailed",
                    f"the credentials were pushed, but the quarantined job could not be started ({error.code}: "
                    f"{error.message})"
                    + (
                        "; the delivery is retried, which pushes the same values again and resumes the job"
                        if error.retryable
                        else ""
                    ),
                    retryable=error.retryable,
                    details={"cause": error.code},
                )
            )


def _let_unanswered_pushes_land(call: GraphCall) -> None:
    """Keep the target until a PUT that got no answer can no longer be carried out (within the deadline).

    Graph may still apply it after the client gave up; released at once, the next sync of the target
    in this process could push newer values that this stray push would then overwrite.
    """
    if call.unanswered_writes:
        wait = min(max(call.unanswered_writes) - time.monotonic(), call.deadline.remaining())
        if wait > 0:
            time.sleep(wait)


def merge_secrets(
    managed: dict[str, SecretValue], stored: list[StoredSecret]
) -> tuple[dict[str, SecretValue], set[str]]:
    """The PUT body: the managed keys, plus every stored key the config does not name.

    Masked values (``*``) can never be sent back; their keys are returned so the result can warn.
    """
    body = dict(managed)
    masked: set[str] = set()
    for pair in stored:
        if pair.key in managed:
            continue
        if pair.masked:
            masked.add(pair.key)
        else:
            body[pair.key] = pair.value
    return body, masked
