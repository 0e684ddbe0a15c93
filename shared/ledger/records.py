"""What the ledger keeps per target: names, versions, times, ids and codes. Never a secret value.

One record per target, stored as JSON (the blob backend) or in memory. The record answers three
questions: what was last pushed (Key Vault version ids and their ``created`` times, so a later push
can prove its values are at least as new), how the last attempt ended (for ``status`` and the
reconcile run), and which expiry warnings were already reported today.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat() if moment is not None else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _text(value: Any, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


@dataclass(frozen=True)
class PushedVersion:
    """One Key Vault secret version that went into a push, under one synchronization key."""

    vault: str
    secret: str
    version: str
    created: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"vault": self.vault, "secret": self.secret, "version": self.version, "created": _iso(self.created)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PushedVersion | None:
        vault, secret, version = _text(raw.get("vault")), _text(raw.get("secret")), _text(raw.get("version"))
        if not (vault and secret and version):
            return None
        return cls(vault, secret, version, _moment(raw.get("created")))


@dataclass(frozen=True)
class LastPush:
    at: datetime
    invocation_id: str
    versions: Mapping[str, PushedVersion]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "invocationId": self.invocation_id,
            "versions": {key: v.to_json() for key, v in sorted(self.versions.items())},
        }

    @classmethod
    def from_json(cls, raw: Any) -> LastPush | None:
        if not isinstance(raw, dict):
            return None
        at = _moment(raw.get("at"))
        versions_raw = raw.get("versions") if isinstance(raw.get("versions"), dict) else {}
        versions = {
            str(key): parsed
            for key, value in versions_raw.items()
            if isinstance(value, dict) and (parsed := PushedVersion.from_json(value)) is not None
        }
        if at is None:
            return None
        return cls(at, _text(raw.get("invocationId")) or "", versions)


@dataclass(frozen=True)
class LastAttempt:
    at: datetime
    invocation_id: str
    trigger: str
    outcome: str  # pushed | failed | unchanged
    error_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "invocationId": self.invocation_id,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "errorCode": self.error_code,
        }

    @classmethod
    def from_json(cls, raw: Any) -> LastAttempt | None:
        if not isinstance(raw, dict) or (at := _moment(raw.get("at"))) is None:
            return None
        return cls(
            at,
            _text(raw.get("invocationId")) or "",
            _text(raw.get("trigger"), 32) or "",
            _text(raw.get("outcome"), 32) or "",
            _text(raw.get("errorCode"), 64),
        )


@dataclass(frozen=True)
class LedgerRecord:
    """The ledger's record of one target."""

    target: str
    service_principal_id: str
    job_id: str | None = None
    last_push: LastPush | None = None
    last_attempt: LastAttempt | None = None
    job_status: str | None = None
    #: ``vault/secret/version`` -> ISO date (UTC) the expiry warning was last reported: once a day.
    expiry_reported: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, target: str, service_principal_id: str) -> LedgerRecord:
        return cls(target=target, service_principal_id=service_principal_id)

    def pushed_version(self, key: str) -> PushedVersion | None:
        return self.last_push.versions.get(key) if self.last_push else None

    def with_attempt(self, attempt: LastAttempt, **changes: Any) -> LedgerRecord:
        return replace(self, last_attempt=attempt, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "target": self.target,
            "servicePrincipalId": self.service_principal_id,
            "jobId": self.job_id,
            "lastPush": self.last_push.to_json() if self.last_push else None,
            "lastAttempt": self.last_attempt.to_json() if self.last_attempt else None,
            "jobStatus": self.job_status,
            "expiryReported": dict(sorted(self.expiry_reported.items())),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: Any, target: str, service_principal_id: str) -> LedgerRecord:
        """A stored record, read forgivingly; one that belongs to another service principal counts as empty.

        A target renamed onto another enterprise application must not inherit the old app's versions.
        """
        if not isinstance(raw, dict) or str(raw.get("servicePrincipalId", "")).lower() != service_principal_id:
            return cls.empty(target, service_principal_id)
        reported = raw.get("expiryReported") if isinstance(raw.get("expiryReported"), dict) else {}
        return cls(
            target=target,
            service_principal_id=service_principal_id,
            job_id=_text(raw.get("jobId")),
            last_push=LastPush.from_json(raw.get("lastPush")),
            last_attempt=LastAttempt.from_json(raw.get("lastAttempt")),
            job_status=_text(raw.get("jobStatus"), 32),
            expiry_reported={str(k)[:400]: str(v)[:10] for k, v in list(reported.items())[:200]},
        )

    @classmethod
    def from_bytes(cls, data: bytes, target: str, service_principal_id: str) -> LedgerRecord:
        try:
            raw = json.loads(data.decode("utf-8")) if data.strip() else None
        except (UnicodeDecodeError, ValueError):
            raw = None
        return cls.from_json(raw, target, service_principal_id)


def newer_of(ours: LedgerRecord, theirs: LedgerRecord) -> LedgerRecord:
    """Merge two writers' records so neither update is lost (used after an ETag conflict).

    The push whose versions were created later wins key by key; the later attempt wins; expiry
    reports are united.
    """
    push = ours.last_push
    if theirs.last_push is not None and (push is None or _push_is_newer(theirs.last_push, push)):
        push = theirs.last_push
    attempt = ours.last_attempt
    if theirs.last_attempt is not None and (attempt is None or theirs.last_attempt.at > attempt.at):
        attempt = theirs.last_attempt
    newest = ours if attempt is ours.last_attempt else theirs
    return replace(
        ours,
        last_push=push,
        last_attempt=attempt,
        job_id=newest.job_id or ours.job_id or theirs.job_id,
        job_status=newest.job_status,
        expiry_reported={**theirs.expiry_reported, **ours.expiry_reported},
    )


def _push_is_newer(candidate: LastPush, current: LastPush) -> bool:
    created = [
        (c.created, current.versions[key].created)
        for key, c in candidate.versions.items()
        if key in current.versions and c.created and current.versions[key].created
    ]
    if created and any(a != b for a, b in created):
        return all(a >= b for a, b in created)
    return candidate.at > current.at
