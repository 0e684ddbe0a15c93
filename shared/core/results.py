"""What one sync reports: per-target records, the invocation's outcome and its HTTP status.

The same records feed the HTTP response, the event trigger's decision to raise, the operator CLI
and the structured logs, so the four can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .errors import SyncError

if TYPE_CHECKING:
    from .config import SecretRef, Target

TargetStatus = Literal["pushed", "validated", "failed"]


@dataclass(frozen=True)
class ResultWarning:
    code: str
    message: str
    retryable: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retryable:
            body["retryable"] = True
        body.update(self.details)
        return body


def secret_expiry_warning(
    target: Target,
    ref: SecretRef,
    *,
    secret: str,
    vault: str | None,
    expires_on: datetime | None,
    expired: bool,
    job_id: str | None = None,
) -> ResultWarning:
    """``SecretNearExpiry`` / ``SecretExpired`` for one target, from a Key Vault event or the reconcile run.

    ``job_id``: the configured or an already discovered job id; without one the service principal is named.
    """
    from .config import KeyVaultSource

    job_id = target.job_id or job_id
    job = (
        f"job {job_id}"
        if job_id
        else f"job not known yet: discovered on service principal {target.service_principal_id} at the next sync"
    )
    expires = expires_on.isoformat() if expires_on else "an unknown time"
    keys = [k for k, s in target.secrets.items() if isinstance(s, KeyVaultSource) and s.ref == ref]
    verb = "expired at" if expired else "expires at"
    return ResultWarning(
        "SecretExpired" if expired else "SecretNearExpiry",
        f"Key Vault secret '{secret}' in vault '{vault}' ({', '.join(keys)} of target '{target.name}', "
        f"{job}) {verb} {expires}: add a new version before the provisioning job goes into quarantine",
        details={
            "target": target.name,
            "servicePrincipalId": target.service_principal_id,
            "jobId": job_id,
            "secret": secret,
            "vault": vault,
            "expiresOn": expires_on.isoformat() if expires_on else None,
        },
    )


@dataclass
class TargetResult:
    target: str
    service_principal_id: str
    job_id: str | None = None
    status: TargetStatus = "failed"
    versions: dict[str, str] = field(default_factory=dict)
    job_started: bool = False
    warnings: list[ResultWarning] = field(default_factory=list)
    error: SyncError | None = None
    duration_ms: int = 0
    graph_request_ids: list[str] = field(default_factory=list)
    #: The job's status code as last seen by this sync (for the ledger; not part of the response).
    job_status: str | None = None

    @property
    def needs_retry(self) -> bool:
        """A retryable failure, or a push whose quarantine resumption hit a transient fault."""
        return bool(self.error and self.error.retryable) or any(w.retryable for w in self.warnings)

    @property
    def succeeded(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "target": self.target,
            "status": self.status,
            "servicePrincipalId": self.service_principal_id,
            "jobId": self.job_id,
            "versions": dict(self.versions),
            "jobStarted": self.job_started,
        }
        if self.warnings:
            body["warnings"] = [w.to_dict() for w in self.warnings]
        if self.error is not None:
            body["error"] = self.error.to_dict()
        return body


@dataclass
class EventRecord:
    """What happened to one delivered event."""

    event_id: str
    event_type: str
    outcome: Literal["synced", "warned", "ignored", "failed"]
    error: SyncError | None = None
    targets: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.event_id, "eventType": self.event_type, "outcome": self.outcome}
        if self.targets:
            body["targets"] = list(self.targets)
        if self.error is not None:
            body["error"] = self.error.to_dict()
        return body


@dataclass
class SyncOutcome:
    invocation_id: str
    dry_run: bool = False
    results: list[TargetResult] = field(default_factory=list)
    warnings: list[ResultWarning] = field(default_factory=list)
    events: list[EventRecord] | None = None

    @property
    def status(self) -> Literal["succeeded", "partial", "failed"]:
        event_failed = any(e.outcome == "failed" for e in self.events or [])
        complete = [r for r in self.results if r.succeeded and not r.needs_retry]
        if len(complete) == len(self.results) and not event_failed:
            return "succeeded"
        if complete or any(r.succeeded for r in self.results):
            return "partial"
        return "failed"

    @property
    def needs_retry(self) -> bool:
        return any(r.needs_retry for r in self.results) or any(
            e.error is not None and e.error.retryable for e in self.events or []
        )

    @property
    def http_status(self) -> int:
        """200 all good; 503 anything retryable; 422 failures that retrying cannot fix."""
        if self.needs_retry:
            return 503
        if any(not r.succeeded for r in self.results):
            return 422
        return 200

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "invocationId": self.invocation_id,
            "status": self.status,
            "dryRun": self.dry_run,
            "results": [r.to_dict() for r in self.results],
        }
        if self.warnings:
            body["warnings"] = [w.to_dict() for w in self.warnings]
        if self.events is not None:
            body["events"] = [e.to_dict() for e in self.events]
        return body
