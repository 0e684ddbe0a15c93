"""Calls that do not depend on one another overlap; the three that do stay in order.

Only three calls of a sync depend on each other: the credentials are read, then validated, then
pushed. The stored secrets, the job and (with the durable ledger) the lock are asked for while the
credentials are read and validated, and dropped when validation fails. These tests order requests
by when the stand-ins received them -- never by how long anything took.
"""

from __future__ import annotations

from standins import Fault
from standins.server import RequestRecord
from tests.counting import fresh_vault
from tests.harness import Harness


def first(records: list[RequestRecord]) -> RequestRecord:
    return min(records, key=lambda r: r.time)


def test_the_stored_secrets_and_the_job_are_read_while_key_vault_is(harness: Harness) -> None:
    harness.scenario.add_target("t1", job_status="Quarantine")
    harness.configure()
    assert harness.post({}).status == 200  # warm
    harness.stack.keyvault.inject("secret", Fault.slow(0.3))
    answer = harness.post({})
    assert answer.status == 200 and answer.result("t1")["jobStarted"] is False  # started by the first sync
    graph, vault = harness.stack.graph, harness.stack.keyvault
    kv_answered = max(r.ended for r in vault.records("secret"))
    assert first(graph.records("get_secrets")).time < kv_answered
    assert first(graph.records("get_job")).time < kv_answered
    # ... while the chain itself waits: validate after Key Vault answered, PUT after validate answered
    validate = graph.records("validate")[-1]
    put = graph.records("put_secrets")[-1]
    assert validate.time >= kv_answered and put.time >= validate.ended


def test_a_job_to_discover_is_listed_while_key_vault_is_read(harness: Harness) -> None:
    harness.scenario.add_target("t1", configured_job_id=False)
    harness.configure()
    assert harness.post({}).status == 200
    harness.stack.keyvault.inject("secret", Fault.slow(0.3))
    assert harness.post({}).status == 200
    kv_answered = max(r.ended for r in harness.stack.keyvault.records("secret"))
    assert harness.stack.graph.records("list_jobs")[-1].time < kv_answered


def test_when_validation_fails_the_early_reads_are_dropped_and_nothing_is_pushed_or_started(harness: Harness) -> None:
    setup = harness.scenario.add_target("t1", job_status="Quarantine")
    harness.configure()
    harness.scenario.rotate(setup.secret_name, accept=False)
    answer = harness.post({})
    assert answer.status == 422
    graph = harness.stack.graph
    assert graph.records("get_secrets") and graph.records("get_job")  # they were read ahead ...
    assert graph.records("put_secrets") == []  # ... and dropped
    assert graph.start_calls(setup.service_principal_id, setup.job_id) == []


def test_a_dry_run_reads_no_job_and_pushes_nothing(harness: Harness) -> None:
    harness.scenario.add_target("t1", job_status="Quarantine")
    harness.configure()
    answer = harness.post({"dryRun": True})
    assert answer.status == 200 and answer.result("t1")["status"] == "validated"
    graph = harness.stack.graph
    assert graph.records("get_job") == [] and graph.records("put_secrets") == [] and graph.records("start") == []


def test_the_graph_token_is_fetched_while_key_vaults_challenge_is_answered(harness: Harness) -> None:
    name, vault = fresh_vault(harness)  # a host this process has never answered a challenge for
    harness.scenario.add_target("t1", vault=name)
    harness.configure()
    vault.inject("secret", Fault.slow(0.3))  # the challenge (the first request) is slow
    assert harness.post({}).status == 200
    identity = harness.stack.identity
    challenge = first(vault.records("secret"))
    assert challenge.status == 401
    assert first(identity.records("token@graph")).time < challenge.ended


def test_a_fan_out_never_has_more_graph_requests_in_flight_than_its_concurrency(harness: Harness) -> None:
    for index in range(6):
        harness.scenario.add_target(f"t{index}", job_status="Quarantine")
    harness.configure(concurrency=2)
    harness.stack.set_latency(0.05)
    assert harness.post({}).status == 200
    intervals = [(r.time, r.ended) for r in harness.stack.graph.requests]
    widest = max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)
    assert widest == 2  # overlapped, and never beyond the pool (2 = concurrency)
