"""Operator command line on the same pipeline as the function app: ``python -m shared <command>``.

    python -m shared check                      # config, Key Vault, Graph permission, jobs, saved credentials
    python -m shared sync [--target NAME ...] [--secret NAME ...] [--dry-run]
    python -m shared status                     # job status, quarantine, last run, secret expiry

A readable table by default, ``--json`` for scripts. On a laptop it signs in with
``DefaultAzureCredential`` (``az login``); inside Azure (``IDENTITY_ENDPOINT`` set) with the managed
identity. Secret values are never printed. Importing this module loads no Azure SDK.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .config import KeyVaultSource, SecretRef, SyncConfig, Target
    from .errors import SyncError
    from .graph import SyncJob
    from .keyvault import SecretInfo
    from .results import SyncOutcome
    from .runtime import Services, Worker

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_RETRYABLE = 3

#: ``check`` warns about Key Vault secrets whose current version expires sooner than this.
EXPIRY_WARNING_DAYS = 30

#: Graph application permissions that allow every call the sync makes (see graph-sync-api.md).
SYNC_PERMISSION = "Synchronization.ReadWrite.All"
OWNED_BY_PERMISSION = "Application.ReadWrite.OwnedBy"
#: Delegated scopes (a signed-in user's token) under which the user's own directory role decides.
DELEGATED_SCOPES = (SYNC_PERMISSION, "Directory.AccessAsUser.All")

APP_ROOT = Path(__file__).resolve().parent.parent

EPILOG = f"""\
exit codes (the same outcomes as the HTTP API):
  {EXIT_OK}  success (check: every check passed)                       HTTP 200
  {EXIT_FAILED}  at least one failure that retrying cannot fix            HTTP 422
  {EXIT_USAGE}  usage error, unknown target or secret, or invalid config  HTTP 400/404/500
  {EXIT_RETRYABLE}  at least one failure a retry can fix (throttling, outage,  HTTP 503
     timeout); takes precedence over {EXIT_FAILED}

credentials: --credential default uses DefaultAzureCredential (Azure CLI login on a laptop);
managed-identity uses the Function App's identity (managedIdentityClientId, or the
SYNC_MANAGED_IDENTITY_CLIENT_ID app setting). The default is managed-identity when
IDENTITY_ENDPOINT is set (inside Azure) and default otherwise.

Secret values are never printed: only names, versions, dates and error codes.
"""


# --- Entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as stop:  # --help, or a usage error argparse already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    restore = _logging(args.verbose)
    try:
        return args.run(_Context(args, sys.stdout))
    finally:
        restore()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help="the SYNC_CONFIG document (a JSON file); default: the SYNC_CONFIG environment variable",
    )
    common.add_argument(
        "--credential",
        choices=("default", "managed-identity"),
        default="managed-identity" if os.environ.get("IDENTITY_ENDPOINT") else "default",
        help="how to sign in (default here: %(default)s)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true", help="show the structured log records on stderr")

    parser = argparse.ArgumentParser(
        prog="python -m shared",
        description="Provisioning Secret Sync operator commands.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{check,sync,status}")

    def command(
        name: str, run: Callable[[_Context], int], help_text: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    command(
        "check",
        run_check,
        "verify config, Key Vault access, the Graph permission, jobs and the jobs' saved credentials",
        "Exit 0 only when the config is valid, every Key Vault secret is readable and usable, "
        f"the Graph token carries {SYNC_PERMISSION}, every service principal and job exists, and "
        "validateCredentials (useSavedCredentials) accepts each job's current credentials. Warns about "
        f"secrets expiring within {EXPIRY_WARNING_DAYS} days.",
    )
    sync = command("sync", run_sync, "sync targets now (the same selection rules and results as POST /api/sync)")
    sync.add_argument("--target", action="append", metavar="NAME", help="a target name (repeatable)")
    sync.add_argument("--secret", action="append", metavar="NAME", help="a Key Vault secret name (repeatable)")
    sync.add_argument("--dry-run", action="store_true", help="resolve and validate, push nothing")
    command("status", run_status, "each target's job status, quarantine reason, last successful run and secret expiry")
    return parser


_PRODUCT_LOGGERS = ("provisioning_secret_sync", "shared")


def _logging(verbose: bool) -> Callable[[], None]:
    """Quiet by default: the product's records would otherwise reach stderr through logging's last-resort
    handler. ``--verbose`` shows them on stderr. Returns what undoes it (main may run in-process)."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in _PRODUCT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if verbose and logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)

    def restore() -> None:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)

    return restore


# --- Shared plumbing ------------------------------------------------------------------------------


@dataclass
class _Context:
    args: argparse.Namespace
    out: TextIO
    _worker: Worker | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def environ(self) -> dict[str, str]:
        environ = dict(os.environ)
        if self.args.config:
            environ["SYNC_CONFIG"] = str(Path(self.args.config).expanduser().resolve())
        return environ

    def worker(self) -> Worker:
        if self._worker is None:
            from .runtime import Worker, managed_identity_for

            factory = managed_identity_for if self.args.credential == "managed-identity" else _developer_credential
            self._worker = Worker(APP_ROOT, self.environ(), credential_factory=factory)
        return self._worker

    def config(self) -> SyncConfig:
        return self.worker().config()

    def emit(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def emit_json(self, body: Any) -> None:
        self.emit(json.dumps(body, indent=2, sort_keys=False, default=str))


def _developer_credential(config: SyncConfig, settings: Any) -> Any:
    from .identity import developer_provider

    return developer_provider(settings, config.managed_identity_client_id)


def _load(ctx: _Context) -> SyncConfig | int:
    """The config, or the exit code after reporting why it is invalid."""
    from .errors import ConfigInvalid

    try:
        return ctx.config()
    except ConfigInvalid as error:
        if ctx.json:
            ctx.emit_json({"status": "failed", "error": error.to_dict()})
        else:
            ctx.emit("SYNC_CONFIG is invalid (ConfigInvalid):")
            for problem in error.problems:
                ctx.emit(f"  {problem}")
        return EXIT_USAGE


def _exit_code(errors: Iterable[tuple[bool, bool]]) -> int:
    """From (failed, retryable) pairs: 3 if any retryable failure, else 1 if any failure, else 0."""
    failed = [retryable for is_failed, retryable in errors if is_failed]
    if any(failed):
        return EXIT_RETRYABLE
    return EXIT_FAILED if failed else EXIT_OK


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines)


def _graph_call() -> Callable[[float], Any]:
    from .graph import GraphCall
    from .redaction import Redactor
    from .retry import Deadline

    return lambda seconds: GraphCall(Deadline(seconds), Redactor(), [])


def _deadline(config: SyncConfig) -> Any:
    from .retry import Deadline

    return Deadline(config.deadline_seconds)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _date(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _parallel(config: SyncConfig, work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(config.concurrency, len(items)), thread_name_prefix="cli") as pool:
        return list(pool.map(work, items))


def _key_vault_sources(config: SyncConfig) -> dict[SecretRef, KeyVaultSource]:
    from .config import KeyVaultSource

    sources: dict[SecretRef, KeyVaultSource] = {}
    for target in config.targets:
        for source in target.secrets.values():
            if isinstance(source, KeyVaultSource):
                sources.setdefault(source.ref, source)
    return sources


@dataclass
class _SecretRead:
    """One Key Vault secret's current version as ``check`` and ``status`` see it."""

    vault: str
    name: str
    info: SecretInfo | None = None
    error: SyncError | None = None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {"vault": self.vault, "secret": self.name}
        if self.info is not None:
            expires = self.info.expires_on
            body.update(
                {
                    "version": self.info.version,
                    "enabled": self.info.enabled,
                    "expiresOn": expires.isoformat() if expires else None,
                    "expiresInDays": _days(expires - now) if expires else None,
                    "notBefore": self.info.not_before.isoformat() if self.info.not_before else None,
                }
            )
        if self.error is not None:
            body["error"] = self.error.to_dict()
        return body


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def _read_secrets(config: SyncConfig, services: Services) -> dict[SecretRef, _SecretRead]:
    from .errors import SyncError

    sources = _key_vault_sources(config)
    deadline = _deadline(config)

    def read(ref: SecretRef) -> _SecretRead:
        source = sources[ref]
        found = _SecretRead(vault=source.vault_name, name=source.secret_name)
        try:
            found.info = services.reader(ref.vault).read_properties(source.secret_name, deadline)
        except SyncError as error:
            found.error = error
        return found

    refs = sorted(sources)
    return dict(zip(refs, _parallel(config, read, refs), strict=True))


def _find_job(services: Services, target: Target, call: Any) -> SyncJob:
    """The configured job, or the only job of the service principal (the pipeline's discovery rule)."""
    graph = services.graph
    if target.job_id:
        return graph.get_job(target.service_principal_id, target.job_id, call)
    return graph.only_job(target.service_principal_id, call)


# --- check ----------------------------------------------------------------------------------------


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


def run_check(ctx: _Context) -> int:
    loaded = _load(ctx)
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
    services = ctx.worker().services(config)
    rows += _check_secrets(config, services)
    rows.append(_check_permission(config, services))
    for target_rows in _parallel(config, _target_checker(config, services), list(config.targets)):
        rows += target_rows
    _report_check(ctx, rows)
    return _exit_code((not r.ok, r.retryable) for r in rows)


def _check_secrets(config: SyncConfig, services: Services) -> list[CheckRow]:
    from .errors import KeyVaultSecretDisabled, KeyVaultSecretExpired, KeyVaultSecretNotYetValid

    now = _now()
    rows = []
    for read in _read_secrets(config, services).values():
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
            error = KeyVaultSecretExpired(f"{where} expired at {_date(info.expires_on)}: add a new version")
        elif info.not_before is not None and info.not_before > now:
            error = KeyVaultSecretNotYetValid(f"{where} is not valid before {_date(info.not_before)}")
        else:
            row = CheckRow("key vault secret", subject, True, f"readable, version {info.version}", details=details)
            if info.expires_on is not None:
                left = info.expires_on - now
                row.message += f", expires {_date(info.expires_on)}"
                if left <= timedelta(days=EXPIRY_WARNING_DAYS):
                    row.warning = (
                        f"expires in {_days(left):g} day(s), on {_date(info.expires_on)}: add a new version before "
                        "the provisioning jobs that use it go into quarantine"
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
    from .errors import GraphForbidden, SyncError
    from .graph import GRAPH_PERMISSION_HELP

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
    from .errors import CredentialsRejected, ServicePrincipalNotFound, SyncError

    new_call = _graph_call()

    def check(target: Target) -> list[CheckRow]:
        call = new_call(config.deadline_seconds)
        try:
            job = _find_job(services, target, call)
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
                    f"'python -m shared sync --target {target.name}' to push the current Key Vault version",
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


def _report_check(ctx: _Context, rows: list[CheckRow]) -> None:
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
        _table(
            ["CHECK", "SUBJECT", "RESULT", "DETAIL"],
            [[r.check, r.subject, r.result, f"{r.code}: {r.message}" if r.code else r.message] for r in rows],
        )
    )
    for row in warned:
        ctx.emit(f"warning: {row.check} {row.subject}: {row.warning}")
    ctx.emit(f"check failed: {len(failed)} problem(s)" if failed else "check passed")


# --- sync -----------------------------------------------------------------------------------------


def run_sync(ctx: _Context) -> int:
    from .errors import RequestInvalid, SyncError
    from .http_api import SyncRequest
    from .selection import select_for_request
    from .service import SyncService

    args = ctx.args
    if args.target and args.secret:
        return _usage(ctx, RequestInvalid("give either --target or --secret, not both"))
    loaded = _load(ctx)
    if isinstance(loaded, int):
        return loaded
    config = loaded
    request = SyncRequest(
        targets=tuple(dict.fromkeys(args.target)) if args.target else None,
        secrets=tuple(dict.fromkeys(args.secret)) if args.secret else None,
        dry_run=args.dry_run,
    )
    try:
        targets = select_for_request(config, request)
    except SyncError as error:
        return _usage(ctx, error)
    outcome = SyncService(ctx.worker()).sync(config, targets, dry_run=args.dry_run, invocation_id=str(uuid.uuid4()))
    from . import telemetry

    telemetry.invocation_summary(outcome, "cli")
    _report_sync(ctx, outcome)
    return {200: EXIT_OK, 422: EXIT_FAILED, 503: EXIT_RETRYABLE}.get(outcome.http_status, EXIT_FAILED)


def _usage(ctx: _Context, error: SyncError) -> int:
    if ctx.json:
        ctx.emit_json({"status": "failed", "error": error.to_dict()})
    else:
        ctx.emit(f"{error.code}: {error.message}")
    return EXIT_USAGE


def _report_sync(ctx: _Context, outcome: SyncOutcome) -> None:
    if ctx.json:
        ctx.emit_json(outcome.to_dict())
        return
    rows = []
    notes = []
    for r in outcome.results:
        versions = ", ".join(f"{k}={v}" for k, v in r.versions.items()) or "-"
        detail = r.error.code if r.error else ("job started" if r.job_started else "")
        if r.warnings:
            detail = ", ".join(filter(None, [detail, *(w.code for w in r.warnings)]))
        rows.append([r.target, r.status, r.job_id or "-", versions, detail])
        if r.error is not None:
            retry = "retryable" if r.error.retryable else "not retryable"
            notes.append(f"{r.target}: {r.error.code} ({retry}): {r.error.message}")
        notes += [f"{r.target}: warning {w.code}: {w.message}" for w in r.warnings]
    mode = " (dry run: nothing pushed)" if outcome.dry_run else ""
    ctx.emit(f"sync {outcome.status}{mode}, invocation {outcome.invocation_id}")
    if rows:
        ctx.emit(_table(["TARGET", "STATUS", "JOB", "KEY VAULT VERSIONS", "DETAIL"], rows))
    else:
        ctx.emit("no target selected")
    for note in notes:
        ctx.emit(note)


# --- status ---------------------------------------------------------------------------------------


def run_status(ctx: _Context) -> int:
    from .config import KeyVaultSource
    from .errors import SyncError

    loaded = _load(ctx)
    if isinstance(loaded, int):
        return loaded
    config = loaded
    services = ctx.worker().services(config)
    secrets = _read_secrets(config, services)
    new_call = _graph_call()
    now = _now()

    def status_of(target: Target) -> dict[str, Any]:
        body: dict[str, Any] = {
            "target": target.name,
            "servicePrincipalId": target.service_principal_id,
            "jobId": target.job_id,
            "jobStatus": None,
            "quarantineReason": None,
            "lastSuccessfulRun": None,
        }
        try:
            job = _find_job(services, target, new_call(config.deadline_seconds))
            body.update(
                jobId=job.id,
                jobStatus=job.status_code,
                quarantineReason=job.quarantine_reason,
                lastSuccessfulRun=job.last_successful_run,
            )
        except SyncError as error:
            body["error"] = error.to_dict()
        body["secrets"] = [
            {"key": key, **secrets[source.ref].to_dict(now)}
            for key, source in target.secrets.items()
            if isinstance(source, KeyVaultSource)
        ]
        return body

    targets = _parallel(config, status_of, list(config.targets))
    failures = [(t["error"]["retryable"]) for t in targets if "error" in t]
    failures += [s["error"]["retryable"] for t in targets for s in t["secrets"] if "error" in s]
    if ctx.json:
        ctx.emit_json({"targets": targets})
    else:
        _report_status(ctx, targets)
    return _exit_code((True, retryable) for retryable in failures)


def _report_status(ctx: _Context, targets: list[dict[str, Any]]) -> None:
    rows: list[list[str]] = []
    notes: list[str] = []
    for t in targets:
        job_cells = [
            t["target"],
            t["jobId"] or "-",
            t["jobStatus"] or ("ERROR" if "error" in t else "-"),
            t["quarantineReason"] or "-",
            t["lastSuccessfulRun"] or "-",
        ]
        if "error" in t:
            notes.append(f"{t['target']}: {t['error']['code']}: {t['error']['message']}")
        secret_cells = [_secret_cells(s) for s in t["secrets"]] or [["-", "-"]]
        for i, cells in enumerate(secret_cells):
            rows.append((job_cells if i == 0 else [""] * len(job_cells)) + cells)
        for s in t["secrets"]:
            if "error" in s:
                error = s["error"]
                notes.append(f"{t['target']}: {s['vault']}/{s['secret']}: {error['code']}: {error['message']}")
    ctx.emit(_table(["TARGET", "JOB", "STATUS", "QUARANTINE", "LAST SUCCESS", "SECRET (KEY)", "EXPIRES"], rows))
    for note in notes:
        ctx.emit(note)


def _secret_cells(secret: Mapping[str, Any]) -> list[str]:
    name = f"{secret['vault']}/{secret['secret']} ({secret['key']})"
    if "error" in secret:
        return [name, secret["error"]["code"]]
    if not secret.get("expiresOn"):
        return [name, "never"]
    expires = datetime.fromisoformat(secret["expiresOn"])
    days = secret["expiresInDays"]
    when = f"expired {-days:g} day(s) ago" if days <= 0 else f"in {days:g} day(s)"
    return [name, f"{_date(expires)} ({when})"]
