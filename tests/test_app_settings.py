"""``SYNC_MANAGED_IDENTITY_CLIENT_ID``: the deployment template injects the user-assigned identity's client id
as an app setting, so one ``sync-config.json`` serves every environment without naming the identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.core.config import load_config
from shared.core.errors import ConfigInvalid
from tests.harness import Harness

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
OTHER_ID = "66666666-7777-8888-9999-000000000000"
SP = "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"


def document(**overrides: Any) -> str:
    doc: dict[str, Any] = {
        "keyVaults": [{"name": "contoso-kv"}],
        "targets": [{"name": "t", "servicePrincipalId": SP, "secrets": {"SecretToken": {"keyVaultSecret": "token"}}}],
    }
    doc.update(overrides)
    return json.dumps(doc)


def test_the_setting_fills_in_an_omitted_client_id(tmp_path: Path) -> None:
    environ = {"SYNC_CONFIG": document(), "SYNC_MANAGED_IDENTITY_CLIENT_ID": f" {CLIENT_ID} "}
    assert load_config(environ, tmp_path).managed_identity_client_id == CLIENT_ID
    assert load_config({"SYNC_CONFIG": document()}, tmp_path).managed_identity_client_id is None
    assert load_config({**environ, "SYNC_MANAGED_IDENTITY_CLIENT_ID": ""}, tmp_path).managed_identity_client_id is None


def test_document_and_setting_must_agree(tmp_path: Path) -> None:
    same = {
        "SYNC_CONFIG": document(managedIdentityClientId=CLIENT_ID.upper()),
        "SYNC_MANAGED_IDENTITY_CLIENT_ID": CLIENT_ID,
    }
    assert load_config(same, tmp_path).managed_identity_client_id == CLIENT_ID.upper()
    with pytest.raises(ConfigInvalid) as caught:
        load_config({**same, "SYNC_CONFIG": document(managedIdentityClientId=OTHER_ID)}, tmp_path)
    assert caught.value.problems == [
        "managedIdentityClientId: differs from the SYNC_MANAGED_IDENTITY_CLIENT_ID app setting; remove one of them"
    ]


def test_a_malformed_setting_is_a_config_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        load_config({"SYNC_CONFIG": document(), "SYNC_MANAGED_IDENTITY_CLIENT_ID": "not-a-guid"}, tmp_path)
    assert caught.value.problems == ["SYNC_MANAGED_IDENTITY_CLIENT_ID: app setting: not a GUID"]


def test_the_function_app_asks_for_the_injected_identity(harness: Harness) -> None:
    harness.stack.identity.known_client_ids = {CLIENT_ID}
    harness.scenario.add_target("app-a")
    harness.configure()
    harness.monkeypatch.setenv("SYNC_MANAGED_IDENTITY_CLIENT_ID", CLIENT_ID)

    result = harness.post({})

    assert result.status == 200, result.text
    token_requests = harness.stack.identity.records("token")
    assert token_requests and all(r.query.get("client_id") == CLIENT_ID for r in token_requests)


def test_a_changed_setting_takes_effect_without_a_restart(harness: Harness) -> None:
    harness.stack.identity.known_client_ids = {CLIENT_ID}
    harness.scenario.add_target("app-a")
    harness.configure()
    harness.monkeypatch.setenv("SYNC_MANAGED_IDENTITY_CLIENT_ID", OTHER_ID)  # not attached to the app
    failed = harness.post({})
    assert failed.status == 422
    assert failed.result("app-a")["error"]["code"] == "ManagedIdentityFailed"

    harness.monkeypatch.setenv("SYNC_MANAGED_IDENTITY_CLIENT_ID", CLIENT_ID)
    assert harness.post({}).status == 200
