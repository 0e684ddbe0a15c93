"""Reading the body of ``POST /api/sync``: a sync request, an Event Grid batch, a CloudEvent, or the
Event Grid subscription-validation handshake, told apart by shape (no header is required)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..core import strict_json
from ..core.errors import RequestInvalid, RequestTooLarge
from . import events

#: Event Grid delivers at most 1 MB per batch; a sync request is tiny. Anything larger is refused.
MAX_BODY_BYTES = 1024 * 1024
#: Event Grid delivers at most 5,000 events per batch (``maxEventsPerBatch``). A body of a million bytes
#: could otherwise carry ~350,000 empty events, each answered and logged: refused like an oversized body.
MAX_EVENTS_PER_BATCH = 5000
_REQUEST_FIELDS = ("targets", "secrets", "dryRun")
_MAX_NAMES = 1000


@dataclass(frozen=True)
class SyncRequest:
    targets: tuple[str, ...] | None = None
    secrets: tuple[str, ...] | None = None
    dry_run: bool = False


@dataclass(frozen=True)
class EventDelivery:
    events: tuple[Any, ...]
    cloud_events: bool


@dataclass(frozen=True)
class ValidationHandshake:
    validation_code: str


HttpBody = SyncRequest | EventDelivery | ValidationHandshake


def parse_body(body: bytes) -> HttpBody:
    if len(body) > MAX_BODY_BYTES:
        raise RequestTooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        return SyncRequest()
    try:
        document = strict_json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestInvalid("the body is not UTF-8 text") from None
    except RecursionError:
        raise RequestInvalid("the body nests too deeply") from None
    except strict_json.DuplicateKey as duplicate:
        raise RequestInvalid(f"the body has the key {_shown_key(duplicate.key)} twice in one object") from None
    except ValueError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RequestInvalid(f"the body is not valid JSON{where}") from None
    if isinstance(document, list):
        return _event_batch(document)
    if not isinstance(document, dict):
        raise RequestInvalid("the body must be a JSON object (a sync request) or an array (an event batch)")
    if any(str(k).lower() == "specversion" for k in document):
        return EventDelivery(events=(document,), cloud_events=True)
    return _sync_request(document)


_SHOWABLE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_VALIDATION_CODE = re.compile(r"[A-Za-z0-9_.:{}-]{1,128}")


def _shown_key(key: str) -> str:
    """A key is echoed only in the shape of a field name: anything else may be a pasted value, or huge."""
    return repr(key) if _SHOWABLE_KEY.fullmatch(key) else "(a key of an unexpected shape)"


def _event_batch(batch: list[Any]) -> HttpBody:
    if not batch:
        raise RequestInvalid("an event batch must not be empty")
    if len(batch) > MAX_EVENTS_PER_BATCH:
        raise RequestTooLarge(f"an event batch holds at most {MAX_EVENTS_PER_BATCH} events")
    if not all(isinstance(e, dict) for e in batch):
        raise RequestInvalid("every element of an event batch must be a JSON object")
    code = events.validation_code(batch[0])
    if code is not None:
        if not _VALIDATION_CODE.fullmatch(code):  # it is echoed back: Event Grid's codes are GUIDs
            raise RequestInvalid("the subscription validation code has an unexpected shape")
        return ValidationHandshake(code)
    cloud = all(any(str(k).lower() == "specversion" for k in e) for e in batch)
    return EventDelivery(events=tuple(batch), cloud_events=cloud)


def _sync_request(document: dict[str, Any]) -> SyncRequest:
    unknown = [k for k in document if k not in _REQUEST_FIELDS]
    if unknown:
        shown = ", ".join(_shown_key(k) for k in unknown[:5])
        raise RequestInvalid(f"unknown field(s) {shown}; allowed: {', '.join(_REQUEST_FIELDS)}")
    if "targets" in document and "secrets" in document:
        raise RequestInvalid("give either 'targets' or 'secrets', not both")
    dry_run = document.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise RequestInvalid("'dryRun' must be true or false")
    return SyncRequest(
        targets=_names(document, "targets"),
        secrets=_names(document, "secrets"),
        dry_run=dry_run,
    )


def _names(document: dict[str, Any], field: str) -> tuple[str, ...] | None:
    if field not in document:
        return None
    value = document[field]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RequestInvalid(f"'{field}' must be a list of strings")
    if not value:
        raise RequestInvalid(f"'{field}' must not be empty (omit it to sync every target)")
    if len(value) > _MAX_NAMES:
        raise RequestInvalid(f"'{field}' lists more than {_MAX_NAMES} names")
    return tuple(dict.fromkeys(value))
