"""Calls the decorated functions the way the Functions host would, and keeps a transcript of
everything they answered or raised so the canary check can search it."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

import function_app
from standins import StandinStack
from standins.scenario import Scenario

_FUNCTIONS = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
sync_http = _FUNCTIONS["sync"]
keyvault_events = _FUNCTIONS["keyvault_events"]
reconcile = _FUNCTIONS["reconcile"]

#: Fast retries for tests; production defaults are in shared.core.retry.RetrySettings.
TEST_SETTINGS = {
    "SYNC_RETRY_BACKOFF_SECONDS": "0.01",
    "SYNC_RETRY_BACKOFF_MAX_SECONDS": "0.05",
    "SYNC_HTTP_CONNECT_TIMEOUT_SECONDS": "2",
    "SYNC_HTTP_READ_TIMEOUT_SECONDS": "2",
}


class InvocationContext(func.Context):
    """The part of the host's context the functions read: the invocation id."""

    def __init__(self) -> None:
        self._id = str(uuid.uuid4())

    @property
    def invocation_id(self) -> str:
        return self._id

    @property
    def function_name(self) -> str:
        return "test"

    @property
    def function_directory(self) -> str:
        return "."

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


@dataclass
class HttpResult:
    status: int
    body: Any
    headers: dict[str, str]
    text: str
    invocation_id: str

    def result(self, target: str) -> dict[str, Any]:
        return next(r for r in self.body["results"] if r["target"] == target)


@dataclass
class Harness:
    stack: StandinStack
    scenario: Scenario
    monkeypatch: pytest.MonkeyPatch
    transcript: list[str] = field(default_factory=list)

    def configure(self, **overrides: Any) -> dict[str, Any]:
        document = self.scenario.config_document(**overrides)
        self.set_config(json.dumps(document))
        return document

    def set_config(self, text: str) -> None:
        for key, value in {**self.stack.environ(), **TEST_SETTINGS}.items():
            self.monkeypatch.setenv(key, value)
        self.monkeypatch.setenv("SYNC_CONFIG", text)

    def post(
        self,
        body: Any = None,
        *,
        raw: bytes | None = None,
        method: str = "POST",
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        request = func.HttpRequest(
            method=method,
            url="https://localhost/api/sync",
            headers=headers or {"content-type": "application/json"},
            params={},
            route_params={},
            body=data,
        )
        context = InvocationContext()
        response = sync_http(request, context)
        text = response.get_body().decode()
        self.transcript.append(text)
        self.transcript.extend(f"{k}: {v}" for k, v in response.headers.items())
        parsed = json.loads(text) if text else None
        return HttpResult(response.status_code, parsed, dict(response.headers), text, context.invocation_id)

    def fire(self, event: func.EventGridEvent | func.CloudEvent) -> BaseException | None:
        """Run the Event Grid trigger; returns what it raised (None if it returned)."""
        try:
            keyvault_events(event, InvocationContext())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.transcript.append(f"{type(exc).__name__}: {exc}")
            return exc
        return None


    def tick(self, *, past_due: bool = False) -> BaseException | None:
        """Run the reconcile timer; returns what it raised (None if it returned)."""
        try:
            reconcile(TimerRequest(past_due=past_due), InvocationContext())
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.transcript.append(f"{type(exc).__name__}: {exc}")
            return exc
        return None


def key_vault_event_data(
    secret: str, vault: str = "standin-kv", version: str = "0" * 32, **extra: Any
) -> dict[str, Any]:
    return {
        "Id": f"https://{vault}.vault.azure.net/secrets/{secret}/{version}",
        "VaultName": vault,
        "ObjectType": "Secret",
        "ObjectName": secret,
        "Version": version,
        "NBF": None,
        "EXP": None,
        **extra,
    }


def event_grid_event(event_type: str, data: Any, *, subject: str = "secret") -> func.EventGridEvent:
    return func.EventGridEvent(
        id=str(uuid.uuid4()),
        data=data,
        topic="/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/standin-kv",
        subject=subject,
        event_type=f"Microsoft.KeyVault.{event_type}" if "." not in event_type else event_type,
        event_time=datetime.now(timezone.utc),
        data_version="1",
    )


def cloud_event(event_type: str, data: Any) -> func.CloudEvent:
    return func.CloudEvent(
        id=str(uuid.uuid4()),
        source="/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/standin-kv",
        type=f"Microsoft.KeyVault.{event_type}",
        specversion="1.0",
        data=data,
        time=datetime.now(timezone.utc),
        subject="secret",
    )


def webhook_event(event_type: str, data: Any, *, cloud: bool = False) -> dict[str, Any]:
    """One event as Event Grid posts it to a webhook (Event Grid schema or CloudEvents)."""
    if cloud:
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/standin-kv",
            "type": f"Microsoft.KeyVault.{event_type}",
            "time": "2026-11-23T10:00:00Z",
            "data": data,
        }
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/standin-kv",
        "subject": "secret",
        "eventType": f"Microsoft.KeyVault.{event_type}",
        "eventTime": "2026-11-23T10:00:00Z",
        "data": data,
        "dataVersion": "1",
        "metadataVersion": "1",
    }


def epoch_in(seconds: float) -> int:
    return int(time.time() + seconds)
