"""National clouds end to end: Graph root, token scope and Key Vault resource follow ``cloud``.

The Graph stand-in accepts only tokens for its ``audience`` and the Key Vault stand-in challenges
for its ``resource``, so a sync succeeds only when the app asks the managed identity for the right
cloud's tokens. ``graph.endpoint`` points at the stand-in; the token scope stays the cloud's.
Each cloud gets its own vault stand-in (its own port), so the Key Vault SDK's process-wide
challenge cache cannot carry a resource over from another test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import cli
from shared.core.config import parse_config
from shared.core.errors import ConfigInvalid
from standins import StandinStack
from standins.keyvault import KeyVaultStandin
from tests.harness import Harness

GOV_VAULT_RESOURCE = "https://vault.usgovcloudapi.net"
SP = "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"


def cloud_vault(stack: StandinStack, name: str) -> KeyVaultStandin:
    return stack.vaults.get(name) or stack.add_vault(name)


def run_cli(harness: Harness, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, "--credential", "managed-identity"])
    captured = capsys.readouterr()
    harness.transcript.append(captured.out + captured.err)
    return code, captured.out


@pytest.mark.parametrize(
    ("cloud", "graph_root", "vault_name"),
    [
        ("usgov", "https://graph.microsoft.us", "usgov-kv"),
        ("usgovdod", "https://dod-graph.microsoft.us", "usgovdod-kv"),
    ],
)
def test_us_government_clouds_sync_end_to_end(
    harness: Harness, capsys: pytest.CaptureFixture[str], cloud: str, graph_root: str, vault_name: str
) -> None:
    stack = harness.stack
    vault = cloud_vault(stack, vault_name)
    stack.graph.audience = graph_root
    vault.resource = GOV_VAULT_RESOURCE
    setup = harness.scenario.add_target("gov-app", vault=vault_name, job_status="Quarantine")
    harness.configure(cloud=cloud)

    result = harness.post({})

    assert result.status == 200, result.text
    assert result.result("gov-app")["status"] == "pushed"
    assert result.result("gov-app")["jobStarted"] is True
    assert harness.scenario.job_token("gov-app") == harness.scenario.current_token(setup.secret_name, vault_name)
    identity = stack.identity
    assert identity.token_requests(graph_root) >= 1
    assert identity.token_requests(GOV_VAULT_RESOURCE) >= 1
    assert identity.token_requests("https://graph.microsoft.com") == 0
    assert identity.token_requests("https://vault.azure.net") == 0
    assert stack.graph.hop_count("validate") == 1

    # The operator CLI takes the same cloud settings.
    code, out = run_cli(harness, capsys, "check")
    assert code == cli.EXIT_OK, out
    assert f"cloud {cloud}" in out


def test_a_token_for_the_wrong_cloud_is_refused(harness: Harness) -> None:
    """The stand-in enforces the audience: a global-cloud config against a US Gov Graph fails, as in Azure."""
    harness.stack.graph.audience = "https://graph.microsoft.us"
    harness.scenario.add_target("app-a")
    harness.configure()  # cloud: global
    result = harness.post({})
    assert result.status == 422
    assert result.result("app-a")["error"]["code"] == "GraphUnauthorized"
    assert "cloud" in result.result("app-a")["error"]["message"]


def test_china_syncs_only_with_validation_skipped_and_says_so(harness: Harness) -> None:
    stack = harness.stack
    vault = cloud_vault(stack, "china-kv")
    stack.graph.audience = "https://microsoftgraph.chinacloudapi.cn"
    vault.resource = "https://vault.azure.cn"
    harness.scenario.add_target("cn-app", vault="china-kv", job_status="Quarantine")

    harness.configure(cloud="china")
    refused = harness.post({})
    assert refused.status == 500
    assert refused.body["error"]["code"] == "ConfigInvalid"
    assert any("validateCredentials" in p for p in refused.body["error"]["problems"])

    harness.configure(cloud="china", validation="skip")
    result = harness.post({})
    assert result.status == 200, result.text
    pushed = result.result("cn-app")
    assert pushed["status"] == "pushed"
    assert [w["code"] for w in pushed["warnings"]] == ["ValidationSkipped"]
    assert pushed["jobStarted"] is False  # start is not offered there: resumeQuarantined defaults to false
    assert stack.graph.hop_count("validate") == 0
    assert stack.graph.hop_count("start") == 0
    assert stack.identity.token_requests("https://microsoftgraph.chinacloudapi.cn") >= 1
    assert stack.identity.token_requests("https://vault.azure.cn") >= 1


# --- config -----------------------------------------------------------------------------------------------


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "keyVaults": [{"name": "contoso-kv"}],
        "targets": [
            {
                "name": "contoso-scim",
                "servicePrincipalId": SP,
                "secrets": {"SecretToken": {"keyVaultSecret": "contoso-scim-token"}},
            }
        ],
    }
    doc.update(overrides)
    return doc


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(json.dumps(doc))
    return caught.value.problems


@pytest.mark.parametrize(
    ("cloud", "graph_root", "vault_suffix"),
    [
        ("global", "https://graph.microsoft.com", "vault.azure.net"),
        ("usgov", "https://graph.microsoft.us", "vault.usgovcloudapi.net"),
        ("usgovdod", "https://dod-graph.microsoft.us", "vault.usgovcloudapi.net"),
    ],
)
def test_each_cloud_picks_graph_root_scope_and_vault_suffix(cloud: str, graph_root: str, vault_suffix: str) -> None:
    config = parse_config(json.dumps(document(cloud=cloud)))
    assert config.graph_endpoint == graph_root
    assert config.cloud.graph_scope == f"{graph_root}/.default"
    assert config.cloud.vault_resource == f"https://{vault_suffix}"
    assert config.vault("contoso-kv").url == f"https://contoso-kv.{vault_suffix}"
    assert config.validation_required is True
    assert config.targets[0].resume_quarantined is True


def test_a_graph_endpoint_override_keeps_the_us_government_scope() -> None:
    config = parse_config(json.dumps(document(cloud="usgovdod", graph={"endpoint": "https://127.0.0.1:8443"})))
    assert config.graph_endpoint == "https://127.0.0.1:8443"
    assert config.cloud.graph_scope == "https://dod-graph.microsoft.us/.default"


def test_a_vault_of_another_cloud_is_rejected() -> None:
    global_vault = {"name": "contoso-kv", "url": "https://contoso-kv.vault.azure.net"}
    found = problems(document(cloud="usgov", keyVaults=[global_vault]))
    assert found[0] == (
        "keyVaults[0].url: host must end with '.vault.usgovcloudapi.net' for cloud 'usgov' "
        "(list private hosts in the SYNC_ALLOWED_VAULT_HOSTS app setting)"
    )


def test_china_is_refused_unless_validation_is_skipped_explicitly_and_says_why() -> None:
    found = problems(document(cloud="china"))
    assert found == [
        'validation: cloud \'china\' does not offer validateCredentials; set "validation": "skip" explicitly to '
        "push credentials without validating them"
    ]
    config = parse_config(json.dumps(document(cloud="china", validation="skip")))
    assert config.graph_endpoint == "https://microsoftgraph.chinacloudapi.cn"
    assert config.cloud.graph_scope == "https://microsoftgraph.chinacloudapi.cn/.default"
    assert config.vault("contoso-kv").url == "https://contoso-kv.vault.azure.cn"
    assert config.validation_required is False
    assert config.targets[0].resume_quarantined is False


def test_china_refuses_resuming_quarantined_jobs() -> None:
    doc = document(cloud="china", validation="skip")
    doc["targets"][0]["resumeQuarantined"] = True
    assert problems(doc) == ["targets[0].resumeQuarantined: cloud 'china' does not offer starting a job; set false"]


def test_skip_is_accepted_in_any_cloud_but_required_is_the_default() -> None:
    assert parse_config(json.dumps(document(cloud="usgov", validation="skip"))).validation_required is False
    assert problems(document(cloud="usgov", validation="maybe")) == ["validation: must be 'required' or 'skip'"]
    assert problems(document(cloud="mooncake"))[0].startswith("cloud: must be one of global, usgov, usgovdod, china")
