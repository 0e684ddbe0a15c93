"""Fixtures: one set of loopback stand-ins per session, a fresh worker and a canary check per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import function_app
from standins import StandinStack
from standins.scenario import Scenario
from tests.harness import Harness

_APP_SETTINGS = (
    "SYNC_CONFIG",
    "SYNC_ALLOWED_VAULT_HOSTS",
    "SYNC_MANAGED_IDENTITY_CLIENT_ID",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "REQUESTS_CA_BUNDLE",
    "AZURE_CLIENT_ID",
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
