"""``sync``: the same selection rules and results as ``POST /api/sync``, from a shell."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.errors import SyncError
    from ..core.results import SyncOutcome
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_RETRYABLE,
    EXIT_USAGE,
    Context,
    load_config_or_report,
    render_table,
)


def run_sync(ctx: Context) -> int:
    from ..core.errors import RequestInvalid, SyncError
    from ..triggers.http_api import SyncRequest
    from ..triggers.selection import select_for_request
    from ..triggers.service import SyncService, pause_error

    args = ctx.args
    if args.target and args.secret:
        return report_usage_error(ctx, RequestInvalid("give either --target or --secret, not both"))
    loaded = load_config_or_report(ctx)
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
        return report_usage_error(ctx, error)
    service = SyncService(ctx.worker())
    if service.paused and not args.dry_run:
        return report_usage_error(ctx, pause_error(), EXIT_RETRYABLE)
    outcome = service.sync(config, targets, dry_run=args.dry_run, invocation_id=str(uuid.uuid4()), trigger="cli")
    from ..core import telemetry

    telemetry.invocation_summary(outcome, "cli")
    _report_sync(ctx, outcome)
    return {200: EXIT_OK, 422: EXIT_FAILED, 503: EXIT_RETRYABLE}.get(outcome.http_status, EXIT_FAILED)


def report_usage_error(ctx: Context, error: SyncError, exit_code: int = EXIT_USAGE) -> int:
    """Report an error that stopped the command before any target ran (usage, selection, pause)."""
    if ctx.json:
        ctx.emit_json({"status": "failed", "error": error.to_dict()})
    else:
        ctx.emit(f"{error.code}: {error.message}")
    return exit_code


def _report_sync(ctx: Context, outcome: SyncOutcome) -> None:
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
        ctx.emit(render_table(["TARGET", "STATUS", "JOB", "KEY VAULT VERSIONS", "DETAIL"], rows))
    else:
        ctx.emit("no target selected")
    for note in notes:
        ctx.emit(note)
