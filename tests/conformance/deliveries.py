"""Events as Event Grid delivers them: the JSON objects the Event Grid extension hands the worker one by one
(trigger value) and that a webhook delivery carries in its body."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000"
VAULT_TOPIC = f"{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/standin-kv"


def delivered(event_type: str, data: Any, *, schema: str = "eventgrid", subject: str = "secret") -> dict[str, Any]:
    """One event as Event Grid delivers it to the function: Event Grid schema or CloudEvents 1.0."""
    full_type = event_type if "." in event_type else f"Microsoft.KeyVault.{event_type}"
    if schema == "cloudevents":
        return {
            "id": str(uuid.uuid4()),
            "source": VAULT_TOPIC,
            "specversion": "1.0",
            "type": full_type,
            "subject": subject,
            "time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "data": data,
        }
    return {
        "id": str(uuid.uuid4()),
        "topic": VAULT_TOPIC,
        "subject": subject,
        "eventType": full_type,
        "eventTime": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "data": data,
        "dataVersion": "1",
        "metadataVersion": "1",
    }
