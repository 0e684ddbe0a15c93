"""Structured logs: one record per target outcome, per event, per invocation.

Each record's fields travel twice: as ``custom_dimensions`` in ``extra`` (what the Application
Insights log exporters turn into customDimensions) and as compact JSON in the message, so the
plain-text log stream of the Functions host carries them too. Only codes, ids and version ids are
logged; secret values never are.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import SyncError
from .results import EventRecord, ResultWarning, SyncOutcome, TargetResult

logger = logging.getLogger("provisioning_secret_sync")


def emit(level: int, event: str, dimensions: dict[str, Any]) -> None:
    fields = {"event": event, **{k: v for k, v in dimensions.items() if v is not None}}
    logger.log(
        level, "%s %s", event, json.dumps(fields, sort_keys=True, default=str), extra={"custom_dimensions": fields}
    )


def target_outcome(invocation_id: str, result: TargetResult, dry_run: bool) -> None:
    error = result.error
    level = error.log_level if error else (logging.WARNING if result.warnings else logging.INFO)
    emit(
        level,
        "TargetSyncOutcome",
        {
            "invocationId": invocation_id,
            "target": result.target,
            "servicePrincipalId": result.service_principal_id,
            "jobId": result.job_id,
            "outcome": result.status,
            "dryRun": dry_run,
            "keyVaultVersions": result.versions or None,
            "jobStarted": result.job_started,
            "errorCode": error.code if error else None,
            "errorMessage": error.message if error else None,
            "retryable": error.retryable if error else None,
            "warningCodes": [w.code for w in result.warnings] or None,
            "durationMs": result.duration_ms,
            "graphRequestId": result.graph_request_ids[-1] if result.graph_request_ids else None,
        },
    )


def event_outcome(invocation_id: str, record: EventRecord) -> None:
    if record.outcome == "failed" and record.error is not None:
        level = record.error.log_level
    elif record.outcome == "ignored":
        level = logging.DEBUG
    else:
        level = logging.INFO
    emit(
        level,
        "KeyVaultEventOutcome",
        {
            "invocationId": invocation_id,
            "eventId": record.event_id,
            "eventType": record.event_type,
            "outcome": record.outcome,
            "targets": record.targets or None,
            "errorCode": record.error.code if record.error else None,
            "errorMessage": record.error.message if record.error else None,
        },
    )


def warning(invocation_id: str, item: ResultWarning) -> None:
    emit(
        logging.WARNING,
        "SyncWarning",
        {"invocationId": invocation_id, "code": item.code, **item.details, "message": item.message},
    )


def invocation_error(invocation_id: str, error: SyncError, trigger: str) -> None:
    emit(
        error.log_level,
        "SyncInvocationError",
        {
            "invocationId": invocation_id,
            "trigger": trigger,
            "errorCode": error.code,
            "errorMessage": error.message,
            "retryable": error.retryable,
        },
    )


def invocation_summary(outcome: SyncOutcome, trigger: str) -> None:
    for result in outcome.results:
        target_outcome(outcome.invocation_id, result, outcome.dry_run)
    for item in outcome.warnings:
        warning(outcome.invocation_id, item)
    for record in outcome.events or []:
        event_outcome(outcome.invocation_id, record)
    failed = [r.target for r in outcome.results if not r.succeeded]
    emit(
        logging.INFO if outcome.status == "succeeded" else logging.WARNING,
        "SyncInvocationOutcome",
        {
            "invocationId": outcome.invocation_id,
            "trigger": trigger,
            "status": outcome.status,
            "dryRun": outcome.dry_run,
            "targets": len(outcome.results),
            "pushed": sum(r.status == "pushed" for r in outcome.results),
            "failedTargets": failed or None,
            "needsRetry": outcome.needs_retry,
        },
    )
