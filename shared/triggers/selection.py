"""Which targets a request or a batch of events selects, and what events ask for besides syncs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..core import identifiers
from ..core.config import SecretRef, SyncConfig, Target
from ..core.errors import EventInvalid, UnknownSecret, UnknownTarget
from ..core.results import EventRecord, ResultWarning, secret_expiry_warning
from .events import SECRET_NEW_VERSION, KeyVaultEvent
from .http_api import SyncRequest


def select_for_request(config: SyncConfig, request: SyncRequest) -> list[Target]:
    """Only configured names: a caller chooses which targets run, never what they point at."""
    # Shape first, then comparison: "t1-to\u212aen".lower() is "t1-token" (KELVIN SIGN), so a name that is not
    # one a vault or the config could hold never reaches a case-insensitive compare.
    if request.targets is not None:
        unknown = [n for n in request.targets if not identifiers.is_target_name(n) or config.target(n) is None]
        if unknown:
            raise UnknownTarget(
                f"not in the config: {_describe(unknown, identifiers.is_target_name)}",
                details={"names": _safe(unknown, identifiers.is_target_name)},
            )
        wanted = set(request.targets)
        return [t for t in config.targets if t.name in wanted]
    if request.secrets is not None:
        configured = config.secret_names()
        unknown = [n for n in request.secrets if not identifiers.is_secret_name(n) or n.lower() not in configured]
        if unknown:
            raise UnknownSecret(
                f"no target uses: {_describe(unknown, identifiers.is_secret_name)}",
                details={"names": _safe(unknown, identifiers.is_secret_name)},
            )
        wanted = {n.lower() for n in request.secrets}  # only names of the strict shape are left here
        return [t for t in config.targets if any(ref.secret in wanted for ref in t.key_vault_refs)]
    return list(config.targets)


def _safe(names: list[str], valid: Callable[[object], bool]) -> list[str]:
    """Echo only names of a legal shape: anything else may be a value pasted by mistake."""
    return [n for n in names if valid(n)]


def _describe(names: list[str], valid: Callable[[object], bool]) -> str:
    shown = _safe(names, valid)
    hidden = len(names) - len(shown)
    text = ", ".join(repr(n) for n in shown)
    if hidden:
        text += f"{', ' if text else ''}{hidden} name(s) of an impossible shape (not shown)"
    return text


@dataclass
class EventPlan:
    """Targets to sync (each once), expiry warnings, and a record per event."""

    targets: list[Target] = field(default_factory=list)
    warnings: list[ResultWarning] = field(default_factory=list)
    records: list[EventRecord] = field(default_factory=list)


def plan_events(
    config: SyncConfig,
    parsed: list[KeyVaultEvent | EventInvalid],
    event_ids: list[str],
    known_job: Callable[[Target], str | None] | None = None,
) -> EventPlan:
    """``known_job`` names job ids discovered earlier (expiry warnings make no Graph call to find them)."""
    plan = EventPlan()
    to_sync: set[str] = set()
    for item, event_id in zip(parsed, event_ids, strict=True):
        if isinstance(item, EventInvalid):
            plan.records.append(EventRecord(event_id, "?", "failed", error=item))
            continue
        if not item.is_secret_event:
            plan.records.append(EventRecord(item.id, item.event_type, "ignored"))
            continue
        affected = config.targets_using({item.secret_ref})
        if not affected:
            plan.records.append(EventRecord(item.id, item.event_type, "ignored"))
            continue
        names = [t.name for t in affected]
        if item.event_type == SECRET_NEW_VERSION:
            to_sync.update(names)
            plan.records.append(EventRecord(item.id, item.event_type, "synced", targets=names))
        else:
            plan.warnings.extend(
                expiry_warning(item, t, item.secret_ref, t.job_id or (known_job(t) if known_job else None))
                for t in affected
            )
            plan.records.append(EventRecord(item.id, item.event_type, "warned", targets=names))
    plan.targets = [t for t in config.targets if t.name in to_sync]
    return plan


def expiry_warning(event: KeyVaultEvent, target: Target, ref: SecretRef, job_id: str | None = None) -> ResultWarning:
    """The warning an expiry event gives for one target (see ``results.secret_expiry_warning``)."""
    return secret_expiry_warning(
        target,
        ref,
        secret=event.object_name or ref.secret,
        vault=event.vault_name,
        expires_on=event.expires_on,
        expired=event.event_type.endswith("SecretExpired"),
        job_id=job_id,
    )
