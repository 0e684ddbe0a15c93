"""Key Vault events in the Event Grid and CloudEvents schemas, as typed objects.

Real payloads carry data keys in PascalCase or camelCase, and Microsoft's own sample has a key with
a trailing space and a value with a leading one, so keys are matched case-insensitively with
surrounding spaces stripped, and string values are stripped too. A malformed event becomes an
``EventInvalid`` (logged, acknowledged, never retried): raising would make Event Grid redeliver it
for a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..core import identifiers
from ..core.config import SecretRef
from ..core.errors import EventInvalid

SECRET_NEW_VERSION = "Microsoft.KeyVault.SecretNewVersionCreated"
SECRET_NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"
SECRET_EXPIRED = "Microsoft.KeyVault.SecretExpired"
SECRET_EVENT_TYPES = frozenset({SECRET_NEW_VERSION, SECRET_NEAR_EXPIRY, SECRET_EXPIRED})
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"


class EventData:
    """An event's ``data`` object with forgiving key lookup."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._by_key = {str(k).strip().lower(): v for k, v in raw.items()}

    def get(self, name: str) -> Any:
        value = self._by_key.get(name.lower())
        return value.strip() if isinstance(value, str) else value

    def text(self, name: str) -> str | None:
        value = self.get(name)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class KeyVaultEvent:
    """One Key Vault event, whatever schema it came in."""

    id: str
    event_type: str
    subject: str | None
    data: EventData | None

    @property
    def is_secret_event(self) -> bool:
        return self.event_type in SECRET_EVENT_TYPES

    @property
    def vault_name(self) -> str | None:
        return self.data.text("VaultName") if self.data else None

    @property
    def object_name(self) -> str | None:
        return self.data.text("ObjectName") if self.data else None

    @property
    def object_type(self) -> str | None:
        return self.data.text("ObjectType") if self.data else None

    @property
    def version(self) -> str | None:
        return self.data.text("Version") if self.data else None

    @property
    def expires_on(self) -> datetime | None:
        return _epoch(self.data.get("EXP")) if self.data else None

    @property
    def not_before(self) -> datetime | None:
        return _epoch(self.data.get("NBF")) if self.data else None

    @property
    def secret_ref(self) -> SecretRef:
        """Only for secret events that passed ``validate``."""
        assert self.vault_name and self.object_name
        return SecretRef(self.vault_name.lower(), self.object_name.lower())

    def validate(self) -> None:
        """A secret event must name a vault and a secret in their legal shapes."""
        if not self.is_secret_event:
            return
        if self.data is None:
            raise EventInvalid(f"event {self.id}: {self.event_type} without a data object")
        if not identifiers.is_vault_name(self.vault_name):
            raise EventInvalid(f"event {self.id}: data.VaultName is missing or not a Key Vault name")
        if not identifiers.is_secret_name(self.object_name):
            raise EventInvalid(f"event {self.id}: data.ObjectName is missing or not a Key Vault secret name")


def _epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


#: The most of an event id / event type that is ever echoed (in responses, results and logs). Real ones are far
#: shorter (a GUID; ``Microsoft.KeyVault.SecretNewVersionCreated``), so a capped one is never a known type.
MAX_EVENT_ID = 128
MAX_EVENT_TYPE = 200


def safe_event_id(value: Any) -> str:
    """Event ids are echoed in responses and logs: keep them short and printable."""
    return echoable(value, MAX_EVENT_ID) or "(no id)"


def echoable(value: Any, limit: int) -> str:
    """Printable characters only, at most ``limit`` of them (then an ellipsis): safe to echo."""
    if not isinstance(value, str):
        return ""
    text = "".join(ch for ch in value[: limit * 4] if ch.isprintable()).strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def from_event_grid_dict(raw: Any) -> KeyVaultEvent:
    """An Event Grid schema event (``eventType``) or a CloudEvent (``type``) from a webhook body."""
    if not isinstance(raw, dict):
        raise EventInvalid("an event must be a JSON object")
    keys = {str(k).lower(): k for k in raw}
    is_cloud_event = "specversion" in keys
    type_key = "type" if is_cloud_event else "eventtype"
    event_type = raw.get(keys.get(type_key, ""))
    event_id = safe_event_id(raw.get(keys.get("id", "")))
    if not echoable(event_type, MAX_EVENT_TYPE):
        raise EventInvalid(f"event {event_id}: no {'type' if is_cloud_event else 'eventType'}")
    data = raw.get(keys.get("data", ""))
    subject = raw.get(keys.get("subject", ""))
    event = KeyVaultEvent(
        id=event_id,
        event_type=echoable(event_type, MAX_EVENT_TYPE),
        subject=subject if isinstance(subject, str) else None,
        data=EventData(data) if isinstance(data, dict) else None,
    )
    event.validate()
    return event


def from_function_event(event: Any) -> KeyVaultEvent:
    """A ``func.EventGridEvent`` or ``func.CloudEvent`` handed to the Event Grid trigger."""
    event_type = getattr(event, "event_type", None) or getattr(event, "type", None)
    event_id = safe_event_id(getattr(event, "id", None))
    try:
        data = event.get_json()
    except (ValueError, TypeError, AttributeError):
        data = None
    if not echoable(event_type, MAX_EVENT_TYPE):
        raise EventInvalid(f"event {event_id}: no event type")
    subject = getattr(event, "subject", None)
    parsed = KeyVaultEvent(
        id=event_id,
        event_type=echoable(event_type, MAX_EVENT_TYPE),
        subject=subject if isinstance(subject, str) else None,
        data=EventData(data) if isinstance(data, dict) else None,
    )
    parsed.validate()
    return parsed


def validation_code(raw: Any) -> str | None:
    """The code of an Event Grid subscription-validation event, if ``raw`` is one."""
    if not isinstance(raw, dict):
        return None
    keys = {str(k).lower(): k for k in raw}
    if raw.get(keys.get("eventtype", "")) != SUBSCRIPTION_VALIDATION:
        return None
    data = raw.get(keys.get("data", ""))
    code = EventData(data).text("validationCode") if isinstance(data, dict) else None
    return code
