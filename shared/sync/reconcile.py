"""The reconcile run (timer trigger): find and heal what events missed.

Event Grid gives up after 24 hours, subscriptions get deleted, the app can be paused or down, a
config change adds a target, someone pastes a token into the portal by hand. Per target, each run:

1. compares Key Vault's current versions with the ledger's record of the last push, and syncs a
   target that was never pushed or whose versions differ (a lost event, a new target, a new key);
2. otherwise asks Graph whether the job's *saved* credentials still validate
   (``useSavedCredentials: true``): a token replaced by hand or revoked by the target application
   gets Key Vault's values if those validate (the sync validates first, as always), else the
   target is reported as failed;
3. reports, once a day, the Key Vault secrets that expire within 30 days.

A sync here is the ordinary pipeline, under the same per-target lock as event-driven syncs, so a
quarantined job is resumed after a good push exactly as there. One structured record per target
(``ReconcileTargetOutcome``) and one per run (``ReconcileRunOutcome``); only retryable failures
make the invocation fail.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..clients.graph import GraphCall, SyncJob
from ..core import telemetry
from ..core.config import KeyVaultSource, Target
from ..core.errors import CredentialsRejected, InternalFailure, SyncError
from ..core.results import ResultWarning, TargetResult, secret_expiry_warning
from ..ledger.records import LedgerRecord
from .engine import SyncRun

if TYPE_CHECKING:
    from ..clients.keyvault import ResolvedSecret
    from .pipeline import Invocation
    from .runtime import Services

logger = logging.getLogger("shared.reconcile")

#: Secrets whose current version expires sooner than this are reported (once a day per version).
EXPIRY_REPORT_DAYS = 30

Action = Literal["unchanged", "synced", "failed"]


@dataclass
class ReconcileItem:
    """What the run found and did for one target."""

    target: str
    action: Action
    reason: str
    result: TargetResult | None = None
    error: SyncError | None = None
    warnings: list[ResultWarning] = field(default_factory=list)
    job_status: str | None = None
    key_vault_versions: dict[str, str] = field(default_factory=dict)
    ledger_versions: dict[str, str] = field(default_factory=dict)

    @property
    def failure(self) -> SyncError | None:
        return self.error or (self.result.error if self.result is not None else None)

    @property
    def needs_retry(self) -> bool:
        failure = self.failure
        return bool(failure and failure.retryable) or bool(self.result and self.result.needs_retry)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"target": self.target, "action": self.action, "reason": self.reason}
        if self.result is not None:
            body["result"] = self.result.to_dict()
        if self.error is not None:
            body["error"] = self.error.to_dict()
        if self.warnings:
            body["warnings"] = [w.to_dict() for w in self.warnings]
        return body


@dataclass
class ReconcileOutcome:
    invocation_id: str
    items: list[ReconcileItem] = field(default_factory=list)

    @property
    def needs_retry(self) -> bool:
        return any(item.needs_retry for item in self.items)

    def count(self, action: Action) -> int:
        return sum(item.action == action for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"invocationId": self.invocation_id, "targets": [item.to_dict() for item in self.items]}


def run_reconcile(services: Services, invocation: Invocation) -> ReconcileOutcome:
    targets = list(services.config.targets)
    outcome = ReconcileOutcome(invocation.id)
    if targets:
        with SyncRun(services, targets, invocation) as run:
            outcome.items = run.map(lambda target: _Reconciler(run, invocation).reconcile(target), targets)
    _log(outcome)
    return outcome


class _Reconciler:
    def __init__(self, run: SyncRun, invocation: Invocation) -> None:
        self.run = run
        self.services = run.services
        self.invocation = invocation

    def reconcile(self, target: Target) -> ReconcileItem:
        try:
            return self._reconcile(target)
        except SyncError as error:
            return ReconcileItem(target.name, "failed", "the target could not be checked", error=error)
        except Exception as exc:  # noqa: BLE001 - one target's bug must not stop the run
            frames = "".join(traceback.format_tb(exc.__traceback__)[-3:])
            logger.error("unexpected %s reconciling target %s\n%s", type(exc).__name__, target.name, frames)
            return ReconcileItem(
                target.name, "failed", "unexpected error", error=InternalFailure(f"unexpected {type(exc).__name__}")
            )

    def _reconcile(self, target: Target) -> ReconcileItem:
        deadline = self.invocation.deadline
        record = self.services.ledger.read(target, deadline)
        current = self._current(target)
        item = ReconcileItem(
            target.name,
            "unchanged",
            "",
            key_vault_versions={key: r.version for key, r in current.items()},
            ledger_versions={
                key: v.version for key, v in (record.last_push.versions.items() if record.last_push else [])
            },
            job_status=record.job_status,
        )
        item.warnings = self._expiry(target, current, record)
        differs = self._differs(target, current, record)
        if differs:
            return self._sync(target, item, differs)
        call = GraphCall(deadline, self.invocation.redactor, [])
        job = self._job(target, record, call)
        item.job_status = job.status_code
        if not self.services.config.validation_required:
            item.reason = "Key Vault and the ledger agree (saved credentials not checked: validation is skipped)"
            return item
        try:
            self.services.graph.validate_credentials(
                target.service_principal_id, job.id, {}, target.template_id, call, use_saved=True
            )
        except CredentialsRejected as rejected:
            return self._sync(
                target,
                item,
                "the job's saved credentials no longer validate (replaced by hand or revoked: "
                f"{rejected.details.get('graphInnerCode') or rejected.details.get('graphErrorCode') or 'rejected'})",
            )
        item.reason = "Key Vault and the ledger agree, and the job's saved credentials validate"
        if job.quarantined:
            item.warnings.append(
                ResultWarning(
                    "JobQuarantined",
                    f"job {job.id} is in quarantine ({job.quarantine_reason or 'no reason given'}) although its "
                    "credentials validate: not started (only a push resumes a job); see the job's provisioning logs",
                    details={"jobId": job.id, "reason": job.quarantine_reason},
                )
            )
        return item

    def _current(self, target: Target) -> dict[str, ResolvedSecret]:
        """Key Vault's current version of each secret the target uses (read once per run, shared)."""
        return {
            key: self.run.resolver.get(source.ref)
            for key, source in target.secrets.items()
            if isinstance(source, KeyVaultSource)
        }

    @staticmethod
    def _differs(target: Target, current: dict[str, ResolvedSecret], record: LedgerRecord) -> str | None:
        if record.last_push is None:
            return "never pushed by this app (a new target, a lost event, or a fresh ledger)"
        pushed = record.last_push.versions
        changed = sorted(
            key for key, found in current.items() if key not in pushed or pushed[key].version != found.version
        )
        if changed:
            return f"Key Vault holds versions the ledger has not pushed ({', '.join(changed)}): an event was missed"
        return None

    def _job(self, target: Target, record: LedgerRecord, call: GraphCall) -> SyncJob:
        graph = self.services.graph
        job_id = target.job_id or record.job_id
        if job_id:
            return graph.get_job(target.service_principal_id, job_id, call)
        job = graph.only_job(target.service_principal_id, call)
        self.services.ledger.remember_job(target.name, target.service_principal_id, job.id)
        return job

    def _sync(self, target: Target, item: ReconcileItem, reason: str) -> ReconcileItem:
        result = self.run.pipeline.run(target)
        item.result = result
        item.reason = reason
        item.action = "synced" if result.succeeded else "failed"
        item.job_status = result.job_status or item.job_status
        return item

    def _expiry(self, target: Target, current: dict[str, ResolvedSecret], record: LedgerRecord) -> list[ResultWarning]:
        """Secrets expiring within 30 days, each version reported once a day (the ledger remembers the day)."""
        now = self.invocation.now()
        today = now.date().isoformat()
        due: dict[str, ResolvedSecret] = {}
        for resolved in current.values():
            if resolved.expires_on is None or resolved.expires_on - now > timedelta(days=EXPIRY_REPORT_DAYS):
                continue
            key = f"{resolved.vault.lower()}/{resolved.name.lower()}/{resolved.version}"
            if record.expiry_reported.get(key) != today:
                due[key] = resolved
        if not due or not self._note_reported(target, set(due), today):
            return []
        job_id = target.job_id or record.job_id
        return [
            secret_expiry_warning(
                target,
                resolved.ref,
                secret=resolved.name,
                vault=resolved.vault,
                expires_on=resolved.expires_on,
                expired=resolved.expires_on is not None and resolved.expires_on <= now,
                job_id=job_id,
            )
            for resolved in due.values()
        ]

    def _note_reported(self, target: Target, keys: set[str], today: str) -> bool:
        """Record today's report under the target's lock; a busy target is reported by a later run instead."""
        try:
            with self.services.ledger.hold(target, self.invocation.deadline) as hold:
                reported = {k: v for k, v in hold.record.expiry_reported.items() if v == today}  # drop older days
                hold.save(replace(hold.record, expiry_reported={**reported, **dict.fromkeys(keys, today)}))
        except SyncError as error:
            logger.info("expiry report of target %s deferred (%s)", target.name, error.code)
            return False
        return True


def _log(outcome: ReconcileOutcome) -> None:
    for item in outcome.items:
        failure = item.failure
        result = item.result
        level = failure.log_level if failure else (logging.WARNING if item.warnings else logging.INFO)
        telemetry.emit(
            level,
            "ReconcileTargetOutcome",
            {
                "invocationId": outcome.invocation_id,
                "target": item.target,
                "action": item.action,
                "reason": item.reason,
                "outcome": result.status if result else None,
                "keyVaultVersions": item.key_vault_versions or None,
                "ledgerVersions": item.ledger_versions or None,
                "jobStatus": item.job_status,
                "jobStarted": result.job_started if result else None,
                "errorCode": failure.code if failure else None,
                "errorMessage": failure.message if failure else None,
                "retryable": failure.retryable if failure else None,
                "warningCodes": [w.code for w in item.warnings + (result.warnings if result else [])] or None,
            },
        )
        for warning in item.warnings:
            telemetry.warning(outcome.invocation_id, warning)
    telemetry.emit(
        logging.WARNING if any(i.action == "failed" for i in outcome.items) else logging.INFO,
        "ReconcileRunOutcome",
        {
            "invocationId": outcome.invocation_id,
            "targets": len(outcome.items),
            "unchanged": outcome.count("unchanged"),
            "synced": outcome.count("synced"),
            "failed": outcome.count("failed"),
            "failedTargets": [i.target for i in outcome.items if i.action == "failed"] or None,
            "needsRetry": outcome.needs_retry,
        },
    )
