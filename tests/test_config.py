"""SYNC_CONFIG: validated as a whole, every problem named by its field path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.core.config import KeyVaultSource, LiteralSource, load_config, parse_config
from shared.core.errors import ConfigInvalid

SP = "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"
JOB = "scim.0123456789abcdef0123456789abcdef.5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"


def document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "keyVaults": [{"name": "contoso-kv"}],
        "targets": [
            {
                "name": "contoso-scim",
                "servicePrincipalId": SP,
                "jobId": JOB,
                "templateId": "scim",
                "secrets": {
                    "BaseAddress": {"value": "https://scim.contoso.com/v2"},
                    "SecretToken": {"keyVaultSecret": "contoso-scim-token", "keyVault": "contoso-kv"},
                },
            }
        ],
    }
    doc.update(overrides)
    return doc


def problems(doc: Any) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(json.dumps(doc))
    return caught.value.problems


def test_contract_example_parses_with_defaults() -> None:
    config = parse_config(json.dumps(document()))
    assert config.cloud.name == "global"
    assert config.graph_endpoint == "https://graph.microsoft.com"
    assert config.graph_api_version == "v1.0"
    assert config.concurrency == 8
    assert config.deadline_seconds == 120
    assert config.validation_required is True
    assert config.vault("CONTOSO-KV").url == "https://contoso-kv.vault.azure.net"
    target = config.targets[0]
    assert target.resume_quarantined is True
    assert isinstance(target.secrets["BaseAddress"], LiteralSource)
    source = target.secrets["SecretToken"]
    assert isinstance(source, KeyVaultSource) and source.vault_name == "contoso-kv"


def test_every_offending_field_is_named_by_path() -> None:
    doc = document()
    doc["targets"].append(
        {
            "name": "bad name!",
            "servicePrincipalId": "not-a-guid",
            "jobId": "../../me",
            "secrets": {"baseAddress": {"value": "x"}, "SecretToken": {"keyVaultSecret": "t", "keyVault": "nope"}},
            "resumeQuarantine": False,
        }
    )
    doc["concurrency"] = 0
    found = problems(doc)
    for expected in (
        "targets[1].name:",
        "targets[1].servicePrincipalId: not a GUID",
        "targets[1].jobId:",
        "targets[1].secrets.baseAddress: not a synchronizationSecret key (did you mean 'BaseAddress'?)",
        "targets[1].secrets.SecretToken.keyVault: not one of keyVaults[].name",
        "targets[1].resumeQuarantine: unknown field",
        "concurrency:",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(extra=1), "extra: unknown field"),
        (lambda d: d["targets"][0].update(resumeQuarantine=False), "targets[0].resumeQuarantine: unknown field"),
        (lambda d: d["keyVaults"][0].update(uri="x"), "keyVaults[0].uri: unknown field"),
        (
            lambda d: d.update(graph={"endpoint": "https://graph.microsoft.com", "version": "beta"}),
            "graph.version: unknown field",
        ),
        (
            lambda d: d["targets"][0]["secrets"]["SecretToken"].update(version="abc"),
            "targets[0].secrets.SecretToken.version: unknown field",
        ),
    ],
)
def test_unknown_fields_anywhere_are_errors(mutate: Any, expected: str) -> None:
    doc = document()
    mutate(doc)
    assert any(p.startswith(expected) for p in problems(doc))


def test_duplicate_keys_and_target_names_are_errors() -> None:
    with pytest.raises(ConfigInvalid, match="appears twice"):
        parse_config('{"keyVaults": [], "keyVaults": []}')
    doc = document()
    doc["targets"].append(dict(doc["targets"][0], name="CONTOSO-SCIM"))
    assert any("duplicate target name" in p for p in problems(doc))


def test_credentials_must_come_from_key_vault() -> None:
    doc = document()
    doc["targets"][0]["secrets"]["SecretToken"] = {"value": "pasted-token"}
    found = problems(doc)
    assert any("SecretToken is a credential" in p for p in found)
    assert not any("pasted-token" in p for p in found)


def test_key_vault_may_be_omitted_only_with_one_vault() -> None:
    doc = document()
    del doc["targets"][0]["secrets"]["SecretToken"]["keyVault"]
    assert parse_config(json.dumps(doc)).targets[0].secrets["SecretToken"].vault_name == "contoso-kv"  # type: ignore[union-attr]
    doc["keyVaults"].append({"name": "other-kv"})
    assert any(p.startswith("targets[0].secrets.SecretToken.keyVault: required") for p in problems(doc))


def test_vault_names_compare_case_insensitively() -> None:
    doc = document()
    doc["targets"][0]["secrets"]["SecretToken"]["keyVault"] = "Contoso-KV"
    config = parse_config(json.dumps(doc))
    source = config.targets[0].secrets["SecretToken"]
    assert isinstance(source, KeyVaultSource)
    assert source.ref.vault == "contoso-kv"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://contoso-kv.vault.azure.net", True),
        ("https://contoso-kv.vault.azure.net/", True),
        ("https://127.0.0.1:8443", True),
        ("https://localhost:8443", True),
        ("http://contoso-kv.vault.azure.net", False),
        ("https://contoso-kv.vault.azure.net.evil.example", False),
        ("https://evil.example/contoso-kv.vault.azure.net", False),
        ("https://contoso-kv.vault.azure.net/secrets", False),
        ("https://contoso-kv.vault.usgovcloudapi.net", False),
    ],
)
def test_vault_urls_must_be_in_the_clouds_vault_domain(url: str, ok: bool) -> None:
    doc = document(keyVaults=[{"name": "contoso-kv", "url": url}])
    if ok:
        parse_config(json.dumps(doc))
    else:
        assert any(p.startswith("keyVaults[0].url:") for p in problems(doc))


def test_private_vault_hosts_are_allowed_only_when_listed() -> None:
    doc = document(keyVaults=[{"name": "contoso-kv", "url": "https://kv.internal.contoso.com"}])
    assert problems(doc)
    config = parse_config(json.dumps(doc), allowed_vault_hosts={"kv.internal.contoso.com"})
    assert config.vault("contoso-kv").url == "https://kv.internal.contoso.com"


@pytest.mark.parametrize("cloud", ["usgov", "usgovdod"])
def test_us_government_clouds_pick_their_endpoints(cloud: str) -> None:
    config = parse_config(json.dumps(document(cloud=cloud)))
    assert config.graph_endpoint.endswith("microsoft.us")
    assert config.cloud.graph_scope == config.graph_endpoint + "/.default"
    assert config.vault("contoso-kv").url == "https://contoso-kv.vault.usgovcloudapi.net"


def test_china_requires_validation_skip_explicitly() -> None:
    found = problems(document(cloud="china", keyVaults=[{"name": "contoso-kv"}]))
    assert any(p.startswith("validation:") and "validateCredentials" in p for p in found)
    config = parse_config(json.dumps(document(cloud="china", validation="skip")))
    assert config.validation_required is False
    assert config.targets[0].resume_quarantined is False
    assert config.vault("contoso-kv").url == "https://contoso-kv.vault.azure.cn"


def test_graph_endpoint_override_keeps_the_clouds_token_scope() -> None:
    config = parse_config(json.dumps(document(graph={"endpoint": "https://graph.private.contoso.com/"})))
    assert config.graph_endpoint == "https://graph.private.contoso.com"
    assert config.cloud.graph_scope == "https://graph.microsoft.com/.default"


def test_load_from_inline_json_or_a_file_relative_to_the_app_root(tmp_path: Path) -> None:
    (tmp_path / "sync-config.json").write_text(json.dumps(document()))
    assert load_config({"SYNC_CONFIG": "sync-config.json"}, tmp_path).targets[0].name == "contoso-scim"
    assert load_config({"SYNC_CONFIG": json.dumps(document())}, tmp_path).targets[0].name == "contoso-scim"
    with pytest.raises(ConfigInvalid, match="not set"):
        load_config({}, tmp_path)
    with pytest.raises(ConfigInvalid, match="cannot read file"):
        load_config({"SYNC_CONFIG": "missing.json"}, tmp_path)
    with pytest.raises(ConfigInvalid, match="not valid JSON"):
        load_config({"SYNC_CONFIG": "{not json"}, tmp_path)


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_an_empty_literal_is_rejected_because_it_would_delete_its_key(value: str) -> None:
    document = {
        "keyVaults": [{"name": "contoso-kv"}],
        "targets": [
            {
                "name": "t1",
                "servicePrincipalId": "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11",
                "secrets": {"BaseAddress": {"value": value}, "SecretToken": {"keyVaultSecret": "tok"}},
            }
        ],
    }
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(json.dumps(document))
    assert caught.value.problems == [
        "targets[0].secrets.BaseAddress.value: must not be empty: an empty value would delete the key from the job"
    ]
