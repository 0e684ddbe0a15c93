"""The credential and the clients are built once per worker process, on first use, and reused."""

from __future__ import annotations

import function_app
from tests.harness import Harness


def test_nothing_is_built_at_import_or_before_the_first_invocation(harness: Harness) -> None:
    assert function_app.state._service is None


def test_clients_and_credential_are_reused_across_invocations(harness: Harness) -> None:
    harness.scenario.add_target("contoso-scim")
    harness.configure()

    assert harness.post({}).status == 200
    worker = function_app.state.service().worker
    first = worker.services(worker.config())
    assert harness.post({}).status == 200
    second = worker.services(worker.config())

    assert first.credential is second.credential
    assert first.graph is second.graph
    assert first.reader("standin-kv") is second.reader("standin-kv")
    assert harness.stack.identity.token_requests() == 2  # one per resource (Key Vault, Graph), ever
    assert harness.stack.keyvault.challenges_issued <= 1  # the SDK caches challenges per host, process-wide


def test_a_changed_config_builds_new_clients_but_keeps_the_credential(harness: Harness) -> None:
    harness.scenario.add_target("contoso-scim")
    harness.configure()
    assert harness.post({}).status == 200
    worker = function_app.state.service().worker
    before = worker.services(worker.config())

    harness.configure(concurrency=2)
    assert harness.post({}).status == 200
    after = worker.services(worker.config())

    assert after.config.concurrency == 2
    assert after.graph is not before.graph
    assert after.credential is before.credential
