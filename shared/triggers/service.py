"""The product's entry points, independent of the Functions bindings.

``function_app.py`` turns bindings into these calls and their answers back into responses; the
operator CLI calls ``sync`` directly. Status mapping lives here and in ``results``, once.

The emergency pause (``SYNC_PAUSED=true``) is decided here, before anything is called: the Event
Grid trigger fails its invocation and the webhook answers 503, so Event Grid keeps the events and
delivers them again once unpaused; ``POST /api/sync`` answers 503 (dry runs still answer, they push
nothing); the reconcile timer logs and skips. Handshakes are answered whatever the pause says.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import telemetry
from ..core.config import SyncConfig, Target
from ..core.errors import ConfigInvalid, EventInvalid, RequestInvalid, RetryableSyncFailure, SyncError, SyncPaused
from ..core.redaction import Redactor
from ..core.results import SyncOutcome
from ..core.retry import Deadline
from ..sync.engine import run_sync
from ..sync.pipeline import Invocation
from ..sync.reconcile import ReconcileOutcome, run_reconcile
from ..sync.runtime import Worker
from . import events
from .http_api import EventDelivery, SyncRequest, ValidationHandshake, parse_body
from .selection import plan_events, select_for_request

_ORIGIN = re.compile(r"^[A-Za-z0-9.-]{1,253}$")
PAUSED_SETTING = "SYNC_PAUSED"


def paused(environ: Mapping[str, str]) -> bool:
    """``SYNC_PAUSED``: on for true/1/yes/on, whatever the case."""
    return environ.get(PAUSED_SETTING, "").strip().lower() in ("true", "1", "yes", "on")


def pause_error() -> SyncPaused:
    return SyncPaused(
        f"{PAUSED_SETTING} is on: nothing is pushed. Events are delivered again and the reconcile timer catches up "
        f"once it is off (set {PAUSED_SETTING}=false)"
    )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class SyncService:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    # --- Core ------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return paused(self.worker.environ)

    def sync(
        self,
        config: SyncConfig,
        targets: list[Target],
        *,
        dry_run: bool,
        invocation_id: str,
        trigger: str = "http",
    ) -> SyncOutcome:
        """Raises ``SyncPaused`` for a real sync while paused (every caller checks first; this is the backstop)."""
        if not dry_run and self.paused:
            raise pause_error()
        invocation = self._invocation(config, invocation_id, dry_run=dry_run, trigger=trigger)
        results = run_sync(self.worker.services(config), targets, invocation)
        return SyncOutcome(invocation_id=invocation_id, dry_run=dry_run, results=results)

    @staticmethod
    def _invocation(config: SyncConfig, invocation_id: str, *, dry_run: bool, trigger: str) -> Invocation:
        return Invocation(
            id=invocation_id,
            deadline=Deadline(config.deadline_seconds),
            redactor=Redactor(),
            dry_run=dry_run,
            trigger=trigger,
        )

    def handle_events(
        self, config: SyncConfig, raw_events: list[Any], invocation_id: str, trigger: str = "eventgrid"
    ) -> SyncOutcome:
        parsed: list[events.KeyVaultEvent | EventInvalid] = []
        ids: list[str] = []
        for raw in raw_events:
            try:
                event = raw if isinstance(raw, events.KeyVaultEvent) else events.from_event_grid_dict(raw)
                parsed.append(event)
                ids.append(event.id)
            except EventInvalid as invalid:
                parsed.append(invalid)
                ids.append(events.safe_event_id(raw.get("id") if isinstance(raw, dict) else None))
        ledger = self.worker.ledger
        plan = plan_events(config, parsed, ids, known_job=lambda t: ledger.known_job(t.name, t.service_principal_id))
        outcome = self.sync(config, plan.targets, dry_run=False, invocation_id=invocation_id, trigger=trigger)
        outcome.warnings.extend(plan.warnings)
        failed = {r.target for r in outcome.results if not r.succeeded or r.needs_retry}
        for record in plan.records:
            if record.outcome == "synced" and failed.intersection(record.targets):
                record.outcome = "failed"
        outcome.events = plan.records
        return outcome

    # --- HTTP trigger ------------------------------------------------------------------------------

    def handle_http(self, method: str, headers: Mapping[str, str], body: bytes, invocation_id: str) -> HttpAnswer:
        method = method.upper()
        if method == "OPTIONS":
            return self._cloud_events_handshake(headers, invocation_id)
        if method != "POST":
            return _error_answer(
                405, RequestInvalid("only POST (and OPTIONS for the webhook handshake)"), invocation_id
            )
        try:
            parsed = parse_body(body)
        except SyncError as error:
            return _error_answer(error.http_status, error, invocation_id)
        if isinstance(parsed, ValidationHandshake):
            return HttpAnswer(200, {"validationResponse": parsed.validation_code})
        if self.paused and not (isinstance(parsed, SyncRequest) and parsed.dry_run):
            error = pause_error()
            telemetry.invocation_error(invocation_id, error, "http")
            return _error_answer(503, error, invocation_id)
        try:
            config = self.worker.config()
        except ConfigInvalid as error:
            telemetry.invocation_error(invocation_id, error, "http")
            # Event Grid retries 5xx: 503 lets a redeploy with a fixed config succeed.
            return _error_answer(503 if isinstance(parsed, EventDelivery) else 500, error, invocation_id)
        if isinstance(parsed, EventDelivery):
            outcome = self.handle_events(config, list(parsed.events), invocation_id, trigger="webhook")
            telemetry.invocation_summary(outcome, "webhook")
            return HttpAnswer(503 if outcome.needs_retry else 200, outcome.to_dict())
        assert isinstance(parsed, SyncRequest)
        try:
            targets = select_for_request(config, parsed)
        except SyncError as error:
            return _error_answer(error.http_status, error, invocation_id)
        outcome = self.sync(config, targets, dry_run=parsed.dry_run, invocation_id=invocation_id)
        telemetry.invocation_summary(outcome, "http")
        return HttpAnswer(outcome.http_status, outcome.to_dict())

    def _cloud_events_handshake(self, headers: Mapping[str, str], invocation_id: str) -> HttpAnswer:
        lowered = {k.lower(): v for k, v in headers.items()}
        origin = (lowered.get("webhook-request-origin") or "").strip()
        if not _ORIGIN.match(origin):
            return _error_answer(
                400,
                RequestInvalid("OPTIONS is the CloudEvents webhook handshake: send WebHook-Request-Origin"),
                invocation_id,
            )
        return HttpAnswer(200, {}, {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST"})

    # --- Event Grid trigger ------------------------------------------------------------------------

    def handle_trigger_event(self, event: Any, invocation_id: str) -> SyncOutcome | None:
        """Raises ``RetryableSyncFailure`` only when a redelivery can succeed."""
        try:
            parsed = events.from_function_event(event)
        except EventInvalid as invalid:
            telemetry.invocation_error(invocation_id, invalid, "eventgrid")
            return None
        if self.paused:
            error = pause_error()
            telemetry.invocation_error(invocation_id, error, "eventgrid")
            raise RetryableSyncFailure(f"{error.code}: syncing is paused; the event is delivered again")
        try:
            config = self.worker.config()
        except ConfigInvalid as error:
            telemetry.invocation_error(invocation_id, error, "eventgrid")
            raise RetryableSyncFailure(f"{error.code}: SYNC_CONFIG is invalid; the event is delivered again") from None
        outcome = self.handle_events(config, [parsed], invocation_id)
        telemetry.invocation_summary(outcome, "eventgrid")
        if outcome.needs_retry:
            failing = [
                f"{r.target}: {r.error.code if r.error else 'JobStartFailed'}" for r in outcome.results if r.needs_retry
            ]
            raise RetryableSyncFailure("retryable failures, the event is delivered again: " + "; ".join(failing))
        return outcome

    # --- Timer trigger -----------------------------------------------------------------------------

    def handle_timer(self, invocation_id: str, *, past_due: bool = False) -> ReconcileOutcome | None:
        """The reconcile run. Raises ``RetryableSyncFailure`` when a target failed with a retryable error
        (or the config is invalid), so the invocation shows as failed; permanent failures are reported."""
        if self.paused:
            telemetry.invocation_error(invocation_id, pause_error(), "timer")
            return None
        try:
            config = self.worker.config()
        except ConfigInvalid as error:
            telemetry.invocation_error(invocation_id, error, "timer")
            raise RetryableSyncFailure(f"{error.code}: SYNC_CONFIG is invalid; nothing was reconciled") from None
        invocation = self._invocation(config, invocation_id, dry_run=False, trigger="timer")
        outcome = run_reconcile(self.worker.services(config), invocation)
        if outcome.needs_retry:
            failing = [
                f"{i.target}: {i.failure.code if i.failure else 'retry'}" for i in outcome.items if i.needs_retry
            ]
            raise RetryableSyncFailure("retryable failures in the reconcile run: " + "; ".join(failing))
        return outcome


def _error_answer(status: int, error: SyncError, invocation_id: str) -> HttpAnswer:
    return HttpAnswer(status, {"invocationId": invocation_id, "status": "failed", "error": error.to_dict()})
