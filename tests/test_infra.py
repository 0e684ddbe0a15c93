"""The deployment (azure.yaml, infra/, the hook scripts, the workflow, sync-config.json, .funcignore) without Azure.

Nothing here can compile Bicep or reach Azure. Instead (tests/infra/):
- every ``.bicep`` file is parsed by a real Bicep parser (pycep-parser) and its resources are checked against the
  types Bicep compiles against (Azure/bicep-types-az, microsoftgraph/msgraph-bicep-types: API versions that exist,
  property names, required properties, enums, scopes), against the documented role and app-role ids, and for
  names that differ per environment and outputs the hooks read;
- the POSIX hook scripts run for real under ``sh`` against a fake ``az`` that parses each call the way the Azure
  CLI does (each option by name, values separately) and refuses what ``az`` would refuse; ``shellcheck`` checks them;
- the PowerShell twins cannot run here (no pwsh): they are checked statically (exit codes, no Write-Error under
  Stop, the same az commands and parameters as the shell twin).
tests/test_infra_mutations.py breaks the templates and scripts on purpose and expects these checks to notice.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
from pathlib import Path

import pytest

from shared.core.config import parse_config
from shared.triggers.http_api import EventDelivery, parse_body
from tests.infra import tables
from tests.infra.bicep import Evaluator, is_ref, load, parse_text, references, unique_string
from tests.infra.checks import CHECKS, Check, Tree
from tests.infra.fake_az import Refused, parse
from tests.infra.schema import catalog, check_resource, known_api_versions

ROOT = Path(__file__).resolve().parent.parent
REPO = Tree(ROOT)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.name)
def test_the_deployment(check: Check) -> None:
    check.run(REPO)


# --- the machinery the checks rely on: it must see what it claims to see -----------------------------------------


def test_the_parser_tells_references_from_literals() -> None:
    template = parse_text(
        "param p string\nvar a = p\nvar b = 'p'\nvar c = '${p}-x'\noutput o string = a\n", Path("x.bicep")
    )
    assert is_ref(template.variables["a"]) and not is_ref(template.variables["b"])
    assert references(template.variables["c"]) == {"p"}
    assert references(parse_text("var f = map([1], n => n + 1)\n", Path("y.bicep")).variables["f"]) == set()


def test_the_evaluator_computes_names_and_refuses_what_it_cannot_know() -> None:
    main = load(ROOT / "infra" / "main.bicep")
    params = {
        "environmentName": "prod",
        "location": "westeurope",
        "keyVaultName": "kv",
        "keyVaultResourceGroupName": "g",
    }
    token = Evaluator(main, params).output("RESOURCE_TOKEN")
    assert len(token) == 13 and token == Evaluator(main, params).output("RESOURCE_TOKEN")
    assert token != Evaluator(main, {**params, "environmentName": "staging"}).output("RESOURCE_TOKEN")
    assert unique_string("a", "b") != unique_string("ab")
    with pytest.raises(Exception, match="deployment time"):
        Evaluator(main, params).output("AZURE_FUNCTION_APP_ID")  # a module output: Azure's to know


def test_the_type_catalog_comes_from_bicep_types_and_covers_every_template() -> None:
    source = catalog()["source"]
    assert re.fullmatch(r"[0-9a-f]{40}", source["Azure/bicep-types-az"])
    assert re.fullmatch(r"[0-9a-f]{40}", source["microsoftgraph/msgraph-bicep-types"])
    used = {r.type_ref for path in sorted((ROOT / "infra").rglob("*.bicep")) for r in load(path).resources.values()}
    assert used <= set(catalog()["resources"]), used - set(catalog()["resources"])
    assert "2024-04-01" in known_api_versions("Microsoft.Web/sites")


def test_the_type_check_catches_invented_and_misspelt_properties() -> None:
    bad = parse_text(
        "resource s 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'x'\n  location: 'l'\n"
        "  kind: 'StorageV2'\n  sku: { name: 'Standard_LRS' }\n"
        "  properties: {\n    allowSharedKeyAccess: false\n    allowsharedkeyaccess2: true\n"
        "    provisioningState: 'Succeeded'\n  }\n}\n"
        "resource t 'Microsoft.Storage/storageAccounts@2023-05-02' = {\n  name: 'y'\n}\n",
        Path("bad.bicep"),
    )
    problems = check_resource(bad, bad.resources["s"]) + check_resource(bad, bad.resources["t"])
    assert any("unknown property 'allowsharedkeyaccess2'" in p for p in problems), problems
    assert any("'provisioningState' is read-only" in p for p in problems), problems
    assert any("API version 2023-05-02 does not exist" in p for p in problems), problems


def test_the_fake_az_parses_each_option_by_name_and_refuses_what_az_would() -> None:
    command, options = parse(["deployment", "group", "create", "-g", "rg", "--template-file", "t.bicep",
                              "--parameters", "a=1", "b=two words", "--query", "x", "-o", "json"])  # fmt: skip
    assert command == "deployment group create"
    assert options == {"--resource-group": "rg", "--template-file": "t.bicep", "--parameters": ["a=1", "b=two words"],
                       "--query": "x", "--output": "json"}  # fmt: skip
    for argv in (["rest", "--url", "u", "--bogus", "1"], ["rest", "--url", "u", "stray"], ["rest", "--method", "get"],
                 ["rest", "--url", "u", "--url", "v"], ["resource", "show", "--ids"], ["vm", "list"]):  # fmt: skip
        with pytest.raises(Refused):
            parse(argv)


# --- what ships -------------------------------------------------------------------------------------------------


def test_sync_config_json_is_a_valid_example() -> None:
    config = parse_config((ROOT / "sync-config.json").read_text(), source="sync-config.json")
    assert config.targets and config.managed_identity_client_id is None  # the template sets it
    with_setting = parse_config(
        (ROOT / "sync-config.json").read_text(), managed_identity_client_id="11111111-2222-3333-4444-555555555555"
    )
    assert with_setting.managed_identity_client_id == "11111111-2222-3333-4444-555555555555"
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert values["SYNC_CONFIG"] == "sync-config.json"
    assert values["SYNC_RECONCILE_SCHEDULE"] == tables.RECONCILE_SCHEDULE and values["SYNC_PAUSED"] == "false"


def ignored(path: str, patterns: list[str]) -> bool:
    """gitignore-style matching, enough for .funcignore (no negations are used there)."""
    parts = path.split("/")
    for pattern in patterns:
        directory = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] if anchored else parts
        for i, candidate in enumerate(candidates):
            is_last = i == len(candidates) - 1
            if fnmatch.fnmatch(candidate, pattern) and (not directory or not is_last):
                return True
    return False


def test_funcignore_ships_the_config_and_keeps_infra_docs_and_ci_out() -> None:
    patterns = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)
    for shipped in ("sync-config.json", "function_app.py", "host.json", "requirements.txt", "shared/cli/__init__.py"):
        assert not ignored(shipped, patterns), shipped
    kept_out = ["infra/main.bicep", "infra/scripts/postprovision.sh", "docs/operations.md", "azure.yaml"]
    kept_out += ["tests/test_infra.py", "standins/graph.py", "local.settings.json", ".github/workflows/infra.yml"]
    for path in kept_out:
        assert ignored(path, patterns), path


# --- replaying dead letters: what the docs tell operators to POST is what /api/sync accepts ----------------------


def test_a_dead_lettered_blob_replays_through_the_webhook() -> None:
    """Event Grid's dead-letter blobs hold an array of Event Grid events plus delivery fields; POST it as is."""
    dead_lettered = [{
        "id": "4c0b2f06-0d53-4a4e-9a57-3e3bb0a9a7c1", "topic": "/subscriptions/s/resourceGroups/rg-secrets/providers/"
        "Microsoft.KeyVault/vaults/contoso-kv", "subject": "contoso-scim-token",
        "eventType": "Microsoft.KeyVault.SecretNewVersionCreated", "eventTime": "2026-03-06T14:02:11Z",
        "dataVersion": "1", "metadataVersion": "1",
        "data": {"Id": "https://contoso-kv.vault.azure.net/secrets/contoso-scim-token/0f1e2d",
                 "VaultName": "contoso-kv", "ObjectType": "Secret", "ObjectName": "contoso-scim-token",
                 "Version": "0f1e2d"},
        "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30,
        "lastDeliveryOutcome": "Probation", "lastHttpStatusCode": 503, "publishTime": "2026-03-06T14:02:12Z",
        "lastDeliveryAttemptTime": "2026-03-07T14:01:55Z",
    }]  # fmt: skip
    body = parse_body(json.dumps(dead_lettered).encode())
    assert isinstance(body, EventDelivery) and not body.cloud_events
    assert body.events[0]["eventType"] == "Microsoft.KeyVault.SecretNewVersionCreated"
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert "--data-binary @events.json" in docs and "/api/sync?code=" in docs


# --- the README's error tables -------------------------------------------------------------------------------------


def error_codes() -> set[str]:
    """Every stable code in shared/core/errors.py."""
    tree = ast.parse((ROOT / "shared" / "core" / "errors.py").read_text())
    codes = set()
    for node in ast.walk(tree):
        is_code = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets)
        if is_code and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            codes.add(node.value.value)
    return codes


def test_the_troubleshooting_table_covers_every_error_code() -> None:
    docs = (ROOT / "README.md").read_text()
    table = docs.split("## Troubleshooting", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and " | `" in line]
    documented = {m for row in rows for m in re.findall(r"\| `([A-Za-z]+)` \|", row)}
    assert error_codes() - documented == set(), "codes missing from the troubleshooting table"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            assert cells[0] and cells[2], f"symptom and fix needed: {row}"
    for warning in ("ValidationSkipped", "UnmanagedMaskedKeys", "JobStartFailed", "SecretNearExpiry", "SecretExpired"):
        assert f"`{warning}`" in table


def test_the_error_codes_table_covers_every_error_code() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Za-z]+)`", table))
    assert error_codes() - documented == set(), "codes missing from the Error codes table"
