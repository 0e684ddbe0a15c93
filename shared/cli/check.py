"""``check``: config, Key Vault access, the Graph permission, jobs and the jobs' saved credentials."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.config import SyncConfig, Target
    from ..core.errors import SyncError
    from ..sync.runtime import Services
from .common import (
    EXPIRY_WARNING_DAYS,
    Context,
    exit_code_of,
    find_job,
    format_date,
    in_days,
    load_config_or_report,
    new_graph_call,
    read_secrets,
    render_table,
    run_parallel,
    utc_now,
)

#: Graph application permissions that allow every call the sync makes (README, "Permissions").
SYNC_PERMISSION = "Synchronization.ReadWrite.All"
OWNED_BY_PERMISSION = "Application.ReadWrite.OwnedBy"
#: Delegated scopes (a signed-in user's token) under which the user's own directory role decides.
DELEGATED_SCOPES = (SYNC_PERMISSION, "Directory.AccessAsUser.All")


@dataclass
class CheckRow:
    check: str
    subject: str
    ok: bool
    message: str
    code: str | None = None
    retryable: bool = False
    warning: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        if not self.ok:
            return "FAILED"
        return "warn" if self.warning else "ok"

    @classmethod
    def failed(cls, check: str, subject: str, error: SyncError) -> CheckRow:
        return cls(check, subject, False, error.message, code=error.code, retryable=error.retryable)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"check": self.check, "subject": self.subject, "ok": self.ok, "message": self.message}
        if self.code:
            body["code"] = self.code
            body["retryable"] = self.retryable
        if self.warning:
            body["warning"] = self.warning
        body.update(self.details)
        return body


def run_check(ctx: Context) -> int:
    loaded = load_config_or_report(ctx)
    if isinstance(loaded, int):
        return loaded
    config = loaded
    rows = [
        CheckRow(
            "config",
            Path(config.source).name if config.source != "SYNC_CONFIG" else "SYNC_CONFIG",
            True,
            f"{len(config.targets)} target(s), {len(config.key_vaults)} vault(s), cloud {config.cloud.name}, "
            f"Graph {config.graph_endpoint}/{config.graph_api_version}",
        )
    ]
    from ..triggers.service import PAUSED_SETTING, paused

    if paused(ctx.worker().environ):
        rows.append(
            CheckRow(
                "pause",
                PAUSED_SETTING,
                True,
                "on",
                warning=f"syncing is paused: nothing is pushed until {PAUSED_SETTING} is false (events are delivered "
                "again and the reconcile timer catches up then)",
            )
        )
    services = ctx.worker().services(config)
    rows += _check_secrets(config, services)
    rows.append(_check_permission(config, services))
    for target_rows in run_parallel(config, _target_checker(config, services), list(config.targets)):
        rows += target_rows
    _report_check(ctx, rows)
    return exit_code_of((not r.ok, r.retryable) for r in rows)


def _check_secrets(config: SyncConfig, services: Services) -> list[CheckRow]:
    from ..core.errors import KeyVaultSecretDisabled, KeyVaultSecretExpired, KeyVaultSecretNotYetValid

    now = utc_now()
    rows = []
    for read in read_secrets(config, services).values():
        subject = f"{read.vault}/{read.name}"
        if read.error is not None:
            rows.append(CheckRow.failed("key vault secret", subject, read.error))
            continue
        info = read.info
        assert info is not None
        details = read.to_dict(now)
        del details["vault"], details["secret"]
        where = f"the current version ({info.version})"
        if info.enabled is False:
            error: SyncError = KeyVaultSecretDisabled(f"{where} is disabled: enable it or add a new version")
        elif info.expires_on is not None and info.expires_on <= now:
            error = KeyVaultSecretExpired(f"{where} expired at {format_date(info.expires_on)}: add a new version")
        elif info.not_before is not None and info.not_before > now:
            error = KeyVaultSecretNotYetValid(f"{where} is not valid before {format_date(info.not_before)}")
        else:
            row = CheckRow("key vault secret", subject, True, f"readable, version {info.version}", details=details)
            if info.expires_on is not None:
                left = info.expires_on - now
                row.message += f", expires {format_date(info.expires_on)}"
                if left <= timedelta(days=EXPIRY_WARNING_DAYS):
                    row.warning = (
                        f"expires in {in_days(left):g} day(s), on {format_date(info.expires_on)}: add a new version "
                        "before the provisioning jobs that use it go into quarantine"
                    )
            rows.append(row)
            continue
        row = CheckRow.failed("key vault secret", subject, error)
        row.details = details
        rows.append(row)
    return rows


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (base64url JSON), without checking its signature; None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def _check_permission(config: SyncConfig, services: Services) -> CheckRow:
    from ..clients.graph import GRAPH_PERMISSION_HELP
    from ..core.errors import GraphForbidden, SyncError

    subject = services.credential.description
    try:
        token = services.credential.get_token(config.cloud.graph_scope).token
    except SyncError as error:
        return CheckRow.failed("graph permission", subject, error)
    claims = jwt_claims(token)
    if claims is None:
        return CheckRow(
            "graph permission", subject, True, "the token is not a JWT", warning="its permissions cannot be read here"
        )
    roles = [r for r in claims.get("roles", []) if isinstance(r, str)] if isinstance(claims.get("roles"), list) else []
    scopes = str(claims.get("scp", "")).split()
    details = {"roles": roles} if roles or not scopes else {"scopes": scopes}
    if SYNC_PERMISSION in roles:
        return CheckRow("graph permission", subject, True, f"app role {SYNC_PERMISSION}", details=details)
    if OWNED_BY_PERMISSION in roles:
        return CheckRow(
            "graph permission",
            subject,
            True,
            f"app role {OWNED_BY_PERMISSION}",
            warning=f"works only for service principals this identity owns, and has been reported to fail on some "
            f"synchronization calls: prefer {SYNC_PERMISSION}",
            details=details,
        )
    if not roles and any(s in scopes for s in DELEGATED_SCOPES):
        return CheckRow(
            "graph permission",
            subject,
            True,
            f"a signed-in user's token ({', '.join(s for s in scopes if s in DELEGATED_SCOPES)})",
            warning="this checks your own access, not the Function App's managed identity: run check with "
            "--credential managed-identity inside Azure, or look at the identity's app role assignments",
            details=details,
        )
    held = ", ".join(roles) or (f"delegated scopes {', '.join(scopes)}" if scopes else "none")
    missing = GraphForbidden(
        f"the Graph token carries no permission for the sync calls (it has: {held}): {GRAPH_PERMISSION_HELP}",
        details=details,
    )
    return CheckRow.failed("graph permission", subject, missing)


def _target_checker(config: SyncConfig, services: Services) -> Callable[[Target], list[CheckRow]]:
    from ..core.errors import CredentialsRejected, ServicePrincipalNotFound, SyncError

    new_call = new_graph_call()

    def check(target: Target) -> list[CheckRow]:
        call = new_call(config.deadline_seconds)
        try:
            job = find_job(services, target, call)
        except SyncError as error:
            kind = "service principal" if isinstance(error, ServicePrincipalNotFound) else "job"
            return [CheckRow.failed(kind, target.name, error)]
        how = "configured" if target.job_id else "discovered"
        row = CheckRow(
            "job",
            target.name,
            True,
            f"{job.id} ({how}), status {job.status_code or 'unknown'}",
            details={"servicePrincipalId": target.service_principal_id, "jobId": job.id, "jobStatus": job.status_code},
        )
        if job.quarantined:
            row.warning = f"the job is in quarantine ({job.quarantine_reason or 'no reason given'})"
        rows = [row]
        if not config.validation_required:
            rows.append(
                CheckRow(
                    "credentials",
                    target.name,
                    True,
                    "not checked",
                    warning=f"cloud '{config.cloud.name}' does not offer validateCredentials (validation: skip)",
                )
            )
            return rows
        try:
            services.graph.validate_credentials(
                target.service_principal_id, job.id, {}, target.template_id, call, use_saved=True
            )
        except CredentialsRejected as rejected:
            said = rejected.details.get("graphInnerCode") or rejected.details.get("graphErrorCode")
            rows.append(
                CheckRow(
                    "credentials",
                    target.name,
                    False,
                    "the job's saved credentials no longer work (validateCredentials with useSavedCredentials: "
                    f"HTTP {rejected.details.get('httpStatus')}{f', {said}' if said else ''}): run "
                    f"'python3 dev.py cli sync --target {target.name}' to push the current Key Vault version",
                    code=rejected.code,
                    details={k: v for k, v in rejected.details.items() if k.startswith(("http", "graph"))},
                )
            )
        except SyncError as error:
            rows.append(CheckRow.failed("credentials", target.name, error))
        else:
            rows.append(CheckRow("credentials", target.name, True, "the job's saved credentials work"))
        return rows

    return check


def _report_check(ctx: Context, rows: list[CheckRow]) -> None:
    failed = [r for r in rows if not r.ok]
    warned = [r for r in rows if r.ok and r.warning]
    if ctx.json:
        ctx.emit_json(
            {
                "status": "failed" if failed else "passed",
                "checks": [r.to_dict() for r in rows],
                "warnings": [f"{r.check} {r.subject}: {r.warning}" for r in warned],
            }
        )
        return
    ctx.emit(
        render_table(
            ["CHECK", "SUBJECT", "RESULT", "DETAIL"],
            [[r.check, r.subject, r.result, f"{r.code}: {r.message}" if r.code else r.message] for r in rows],
        )
    )
    for row in warned:
        ctx.emit(f"warning: {row.check} {row.subject}: {row.warning}")
    ctx.emit(f"check failed: {len(failed)} problem(s)" if failed else "check passed")
