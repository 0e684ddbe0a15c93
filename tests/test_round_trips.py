"""Round trips per invocation (issue #5), counted on the stand-ins, through the decorated functions.

A warm invocation for one target with one Key Vault secret: one Key Vault GET, validateCredentials,
GET secrets, PUT secrets, and one job GET when quarantine resumption needs the job's status; no
token request and no Key Vault challenge. The first invocation of a worker adds at most one token
request per resource and one challenge per vault, also when a fan-out starts all at once.
"""

from __future__ import annotations

from collections import Counter

from tests.counting import GRAPH_RESOURCE, VAULT_RESOURCE, fresh_vault, tally
from tests.harness import Harness, event_grid_event, key_vault_event_data

#: (service, hop) -> requests in a warm invocation of one target with one secret in the default vault.
WARM_ONE_TARGET = Counter(
    {
        ("standin-kv", "secret"): 1,
        ("graph", "validate"): 1,
        ("graph", "get_secrets"): 1,
        ("graph", "put_secrets"): 1,
        ("graph", "get_job"): 1,
    }
)


def test_first_invocation_adds_one_token_per_resource_and_one_challenge(harness: Harness) -> None:
    vault_name, vault = fresh_vault(harness)
    harness.scenario.add_target("t1", vault=vault_name)
    harness.configure()
    before = tally(harness.stack)

    result = harness.post({})

    assert result.status == 200, result.text
    done = tally(harness.stack) - before
    assert done.tokens == Counter({GRAPH_RESOURCE: 1, VAULT_RESOURCE: 1, "total": 2})
    assert done.challenges == Counter({vault_name: 1})
    assert [r.status for r in vault.records("secret")] == [401, 200]


def test_warm_invocation_makes_exactly_the_five_calls(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    before = tally(harness.stack)

    result = harness.post({})

    assert result.status == 200, result.text
    assert result.result("t1")["status"] == "pushed"
    done = tally(harness.stack) - before
    assert done.hops == WARM_ONE_TARGET
    assert done.tokens == Counter()
    assert done.challenges == Counter()


def test_warm_event_trigger_makes_exactly_the_five_calls(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    version = harness.scenario.rotate(target.secret_name)
    before = tally(harness.stack)

    raised = harness.fire(
        event_grid_event("SecretNewVersionCreated", key_vault_event_data(target.secret_name, version=version))
    )

    assert raised is None
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(target.secret_name)
    done = tally(harness.stack) - before
    assert done.hops == WARM_ONE_TARGET
    assert done.tokens == Counter()
    assert done.challenges == Counter()


def test_no_job_read_when_quarantine_resumption_is_off(harness: Harness) -> None:
    harness.scenario.add_target("t1", resume_quarantined=False)
    harness.configure()
    assert harness.post({}).status == 200
    before = tally(harness.stack)

    assert harness.post({}).status == 200

    assert (tally(harness.stack) - before).hops == WARM_ONE_TARGET - Counter({("graph", "get_job"): 1})


def test_a_discovered_job_is_listed_and_not_read_again(harness: Harness) -> None:
    harness.scenario.add_target("t1", configured_job_id=False)
    harness.configure()
    assert harness.post({}).status == 200
    before = tally(harness.stack)

    assert harness.post({}).status == 200

    expected = WARM_ONE_TARGET - Counter({("graph", "get_job"): 1}) + Counter({("graph", "list_jobs"): 1})
    assert (tally(harness.stack) - before).hops == expected


def test_a_quarantined_job_adds_only_its_start(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    harness.stack.graph.set_job_status(target.service_principal_id, target.job_id, "Quarantine")
    before = tally(harness.stack)

    result = harness.post({})

    assert result.result("t1")["jobStarted"] is True
    assert (tally(harness.stack) - before).hops == WARM_ONE_TARGET + Counter({("graph", "start"): 1})


def test_first_fan_out_shares_one_token_per_resource_and_one_challenge(harness: Harness) -> None:
    """Eight targets with eight secrets start at once on a cold worker: the token of each resource and
    the Key Vault challenge are still fetched once, not once per thread."""
    vault_name, vault = fresh_vault(harness)
    for index in range(8):
        harness.scenario.add_target(f"t{index}", vault=vault_name)
    harness.configure(concurrency=8)
    before = tally(harness.stack)

    result = harness.post({})

    assert result.status == 200, result.text
    first = tally(harness.stack) - before
    assert first.tokens == Counter({GRAPH_RESOURCE: 1, VAULT_RESOURCE: 1, "total": 2})
    assert first.challenges == Counter({vault_name: 1})
    assert Counter(r.status for r in vault.records("secret")) == Counter({200: 8, 401: 1})

    before = tally(harness.stack)
    assert harness.post({}).status == 200
    warm = tally(harness.stack) - before
    assert warm.tokens == Counter()
    assert warm.challenges == Counter()
    assert warm.hops == Counter(
        {
            (vault_name, "secret"): 8,
            ("graph", "validate"): 8,
            ("graph", "get_secrets"): 8,
            ("graph", "put_secrets"): 8,
            ("graph", "get_job"): 8,
        }
    )


def test_two_vaults_one_challenge_each_and_one_vault_token(harness: Harness) -> None:
    vaults = [fresh_vault(harness)[0], fresh_vault(harness)[0]]
    for index in range(6):
        harness.scenario.add_target(f"t{index}", vault=vaults[index % 2])
    harness.configure(concurrency=6)
    before = tally(harness.stack)

    assert harness.post({}).status == 200

    done = tally(harness.stack) - before
    assert done.challenges == Counter({vaults[0]: 1, vaults[1]: 1})
    assert done.tokens == Counter({GRAPH_RESOURCE: 1, VAULT_RESOURCE: 1, "total": 2})
