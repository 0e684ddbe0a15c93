"""Fixtures: one set of loopback stand-ins per session, a fresh worker and a canary check per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator

import pytest

import function_app
from standins import StandinStack
from standins.azurite import HOW_TO_GET, Azurite, find_azurite
from standins.scenario import Scenario
from standins.storage import StorageProxy
from tests.ci_gate import pytest_configure, pytest_runtest_makereport  # noqa: F401 - hooks: CI gate (issue 9)
from tests.harness import Harness

_APP_SETTINGS = (
    "SYNC_CONFIG",
    "SYNC_ALLOWED_VAULT_HOSTS",
    "SYNC_MANAGED_IDENTITY_CLIENT_ID",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "REQUESTS_CA_BUNDLE",
    "AZURE_CLIENT_ID",
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__accountName",
    "SYNC_LEDGER_CONTAINER",
    "SYNC_LEDGER_LEASE_SECONDS",
    "SYNC_PAUSED",
)


@pytest.fixture(scope="session")
def stack() -> Iterator[StandinStack]:
    with StandinStack() as running:
        yield running


@pytest.fixture
def harness(
    stack: StandinStack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Harness]:
    """A clean estate and a new worker process; after the test, no planted secret value may appear anywhere."""
    stack.reset()
    function_app.state.reset()
    for name in _APP_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.DEBUG)
    harness = Harness(stack=stack, scenario=Scenario(stack), monkeypatch=monkeypatch)
    yield harness
    function_app.state.reset()
    captured = capsys.readouterr()
    # In teardown caplog.text/records hold the teardown phase only: the test body's records are in "call".
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    formatter = logging.Formatter()
    haystacks = {
        "log records": "".join(formatter.format(r) + repr(r.__dict__) for r in records),
        "responses and raised errors": "\n".join(harness.transcript),
        "printed output": captured.out + captured.err,
    }
    leaks = [
        (value[:14] + "...", where)
        for value in harness.scenario.canary_values
        for where, text in haystacks.items()
        if value in text
    ]
    assert not leaks, f"secret values leaked: {leaks}"


# --- The durable ledger on real storage (Azurite) ------------------------------------------------------


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite blob service per session. Under CI=true a missing Azurite fails instead of skipping."""
    if find_azurite() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the ledger tests must run under CI: {HOW_TO_GET}")
        pytest.skip(HOW_TO_GET)
    with Azurite() as running:
        yield running


@pytest.fixture
def storage(azurite: Azurite, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[StorageProxy]:
    """The function app's storage (``AzureWebJobsStorage``) on Azurite, behind a fault-injecting proxy; a
    container of its own per test. Afterwards no planted secret value may appear in any ledger blob."""
    proxy = StorageProxy(azurite.endpoint).start()
    container = f"ledger-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AzureWebJobsStorage", proxy.connection_string)
    monkeypatch.setenv("SYNC_LEDGER_CONTAINER", container)
    yield proxy
    proxy.stop()
    from azure.storage.blob import ContainerClient

    blobs = ContainerClient.from_connection_string(azurite.connection_string, container)
    stored = [blobs.download_blob(b.name).readall() for b in blobs.list_blobs()] if blobs.exists() else []
    leaks = [v[:14] + "..." for v in harness.scenario.canary_values for data in stored if v.encode() in data]
    assert not leaks, f"secret values in the ledger's blobs: {leaks}"
