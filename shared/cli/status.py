"""``status``: each target's job status, quarantine reason, last successful run and secret expiry, beside
the ledger's record of it (last push, versions, last outcome), and whether syncing is paused."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.config import Target
from .common import (
    Context,
    exit_code_of,
    find_job,
    format_date,
    load_config_or_report,
    new_deadline,
    new_graph_call,
    read_secrets,
    render_table,
    run_parallel,
    utc_now,
)


def run_status(ctx: Context) -> int:
    from ..core.config import KeyVaultSource
    from ..core.errors import SyncError

    loaded = load_config_or_report(ctx)
    if isinstance(loaded, int):
        return loaded
    config = loaded
    from ..triggers.service import paused

    services = ctx.worker().services(config)
    secrets = read_secrets(config, services)
    new_call = new_graph_call()
    now = utc_now()
    ledger = services.ledger

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
            job = find_job(services, target, new_call(config.deadline_seconds))
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
        try:
            record = ledger.read(target, new_deadline(config))
            body["ledger"] = {k: record.to_json()[k] for k in ("lastPush", "lastAttempt", "jobStatus")}
        except SyncError as error:
            body["ledger"] = {"error": error.to_dict()}
        return body

    targets = run_parallel(config, status_of, list(config.targets))
    failures = [(t["error"]["retryable"]) for t in targets if "error" in t]
    failures += [s["error"]["retryable"] for t in targets for s in t["secrets"] if "error" in s]
    failures += [t["ledger"]["error"]["retryable"] for t in targets if "error" in t["ledger"]]
    is_paused = paused(ctx.worker().environ)
    if ctx.json:
        ctx.emit_json({"paused": is_paused, "ledger": ledger.description, "targets": targets})
    else:
        if is_paused:
            ctx.emit("PAUSED: SYNC_PAUSED is on, nothing is pushed (events wait for redelivery; the timer skips)")
        _report_status(ctx, targets)
        _report_ledger(ctx, ledger.description, targets)
    return exit_code_of((True, retryable) for retryable in failures)


def _report_status(ctx: Context, targets: list[dict[str, Any]]) -> None:
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
    ctx.emit(render_table(["TARGET", "JOB", "STATUS", "QUARANTINE", "LAST SUCCESS", "SECRET (KEY)", "EXPIRES"], rows))
    for note in notes:
        ctx.emit(note)


def _report_ledger(ctx: Context, description: str, targets: list[dict[str, Any]]) -> None:
    rows = []
    for t in targets:
        record = t["ledger"]
        if "error" in record:
            rows.append([t["target"], "ERROR", record["error"]["code"], "-"])
            continue
        push, attempt = record.get("lastPush"), record.get("lastAttempt")
        versions = ", ".join(f"{k}={v['version']}" for k, v in (push or {}).get("versions", {}).items()) or "-"
        last = "-"
        if attempt:
            last = f"{attempt['outcome']}{' ' + attempt['errorCode'] if attempt.get('errorCode') else ''}"
            last += f" ({attempt['trigger']}, {format_date(datetime.fromisoformat(attempt['at']))})"
        when = format_date(datetime.fromisoformat(push["at"])) if push else "never (by this ledger)"
        rows.append([t["target"], when, versions, last])
    ctx.emit(f"\nledger: {description}")
    ctx.emit(render_table(["TARGET", "LAST PUSH", "PUSHED VERSIONS", "LAST ATTEMPT"], rows))


def _secret_cells(secret: Mapping[str, Any]) -> list[str]:
    name = f"{secret['vault']}/{secret['secret']} ({secret['key']})"
    if "error" in secret:
        return [name, secret["error"]["code"]]
    if not secret.get("expiresOn"):
        return [name, "never"]
    expires = datetime.fromisoformat(secret["expiresOn"])
    days = secret["expiresInDays"]
    when = f"expired {-days:g} day(s) ago" if days <= 0 else f"in {days:g} day(s)"
    return [name, f"{format_date(expires)} ({when})"]
