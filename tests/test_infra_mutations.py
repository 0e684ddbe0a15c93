"""Deliberate breakages of the templates, hooks, azure.yaml, workflow and docs: the infra checks must catch each.

Every mutant is applied to a copy of the tree; the checks that read the mutated file run in-process against the
copy (cheapest and most specific first, stopping at the first failure), and the test passes only if one fails.
A mutant whose text no longer occurs fails too, so the list cannot silently go stale. The first group are the
kinds issue 12 reported as passing the old suite (a renamed ``functionAppConfig``, an API version that does not
exist, a wrong role GUID, a removed ``scope:``, the client id passed as principal id, a bogus property, the
CloudEvents schema, an unquoted hook argument, a broken wait loop); the rest cover the other promises.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.checks import CHECKS, Check, Tree

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["infra", "azure.yaml", "docs", "README.md", "function_app.py", "shared", ".github", "sync-config.json"]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str  # "" creates the file
    new: str
    count: int = 1  # how often ``old`` occurs (all occurrences are replaced)


M = Mutant
MUTANTS = [
    # --- the breakages issue 12 found passing the old suite ---
    M(
        "functionAppConfig renamed",
        "infra/app/function.bicep",
        "    functionAppConfig: {",
        "    functionAppConfiguration: {",
    ),
    M(
        "API version that does not exist",
        "infra/app/function.bicep",
        "Microsoft.Web/sites@2024-04-01' = {",
        "Microsoft.Web/sites@2024-04-02' = {",
    ),
    M(
        "wrong role GUID (Key Vault Reader)",
        "infra/app/keyvault-access.bicep",
        "4633458b-17de-408a-b874-0445c86b69e6",
        "21090545-7ca7-4776-b22c-e363652d74d2",
    ),
    M(
        "scope: removed from the vault role",
        "infra/app/keyvault-access.bicep",
        "  scope: vault\n  properties",
        "  properties",
    ),
    M(
        "client id passed as principal id",
        "infra/main.bicep",
        "keyVaultName: keyVaultName\n    principalId: identity.outputs.principalId",
        "keyVaultName: keyVaultName\n    principalId: identity.outputs.clientId",
    ),
    M(
        "bogus property",
        "infra/app/storage.bicep",
        "    allowSharedKeyAccess: false\n",
        "    allowSharedKeyAccess: false\n    bogusProperty: true\n",
    ),
    M(
        "CloudEvents schema on the subscription",
        "infra/events.bicep",
        "eventDeliverySchema: 'EventGridSchema'",
        "eventDeliverySchema: 'CloudEventSchemaV1_0'",
    ),
    M(
        "unquoted hook argument",
        "infra/scripts/subscribe-keyvault-events.sh",
        '"secretNames=$KEY_VAULT_EVENT_SECRETS"',
        "secretNames=$KEY_VAULT_EVENT_SECRETS",
    ),
    M(
        "unquoted URL in the grant",
        "infra/scripts/grant-graph-permission.sh",
        '--url "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \\\n      --headers',
        "--url $graph/v1.0/servicePrincipals/$principal/appRoleAssignments \\\n      --headers",
    ),
    M(
        "wait loop off by one",
        "infra/scripts/subscribe-keyvault-events.sh",
        '[ "$attempt" -lt "$attempts" ]',
        '[ "$attempt" -le "$attempts" ]',
    ),
    M(
        "wait loop inverted",
        "infra/scripts/subscribe-keyvault-events.sh",
        "until az resource show",
        "while az resource show",
    ),
    M("wait loop without a pause", "infra/scripts/grant-graph-permission.sh", '  sleep "$visible_wait"\n', ""),
    # --- issue 12, item 1: azd down ---
    M("azd minimum lowered", "azure.yaml", 'azd: ">= 1.24.1"', 'azd: ">= 1.20.0"'),
    M("predown hook unwired", "azure.yaml", "  predown:\n", "  predown-disabled:\n"),
    M(
        "predown deletes anyone's subscription",
        "infra/scripts/predown.sh",
        'if [ "$(lower "$destination")" = "$(lower "$function_id")" ]; then\n      az eventgrid',
        "if true; then\n      az eventgrid",
    ),
    M(
        "predown deletes a topic it did not create",
        "infra/scripts/predown.sh",
        'if [ -n "$topic_owner" ] && [ "$topic_owner" != None ]; then',
        "if true; then",
    ),
    M(
        "predown ignores the skip switch",
        "infra/scripts/predown.sh",
        'if [ "${SYNC_PREDOWN_SKIP:-false}" = true ]; then',
        "if false; then",
    ),
    M(
        "predown leaves the vault role",
        "infra/scripts/predown.sh",
        '  az role assignment delete --ids "$KEY_VAULT_ROLE_ASSIGNMENT_ID" --subscription "$subscription"\n',
        "",
    ),
    M(
        "vault role deployed into the app's group",
        "infra/main.bicep",
        "scope: resourceGroup(vaultSubscriptionId, keyVaultResourceGroupName)",
        "scope: rg",
    ),
    M(
        "no role assignment id for predown",
        "infra/main.bicep",
        "output KEY_VAULT_ROLE_ASSIGNMENT_ID string = keyVaultAccess.outputs.roleAssignmentId\n",
        "",
    ),
    # --- item 2: the grant races the identity ---
    M(
        "grant retries every error",
        "infra/scripts/grant-graph-permission.sh",
        '*"Not a valid reference update"*|*Request_ResourceNotFound*|*"does not exist or one of its queried '
        'reference-property objects are not present"*) ;;',
        "*) ;;",
    ),
    M(
        "grant never retries",
        "infra/scripts/grant-graph-permission.sh",
        '[ "$attempt" -lt "$grant_attempts" ]',
        "false",
    ),
    M(
        "grant does not wait for the identity",
        "infra/scripts/grant-graph-permission.sh",
        '[ "$attempt" -lt "$visible_attempts" ]',
        "false",
    ),
    M(
        "grant recreates an existing assignment",
        "infra/scripts/grant-graph-permission.sh",
        'if [ "$existing" != "0" ]; then',
        "if false; then",
    ),
    M(
        "grant body misspells appRoleId",
        "infra/scripts/grant-graph-permission.sh",
        '\\"appRoleId\\": \\"$role\\"',
        '\\"appRoleID\\": \\"$role\\"',
    ),
    M(
        "bicep grant without the role",
        "infra/scripts/grant-graph-permission.sh",
        '--parameters "principalId=$principal" "appRoleId=$role"',
        '--parameters "principalId=$principal"',
    ),
    M(
        "usage error exits 1",
        "infra/scripts/grant-graph-permission.sh",
        'usage "GRAPH_APP_ROLE_ID must be',
        'fail "GRAPH_APP_ROLE_ID must be',
    ),
    # --- item 3: the fallback must remove the extension dependency; sovereign clouds default to it ---
    M(
        "graph module back in main.bicep",
        "infra/main.bicep",
        "// Outputs land in the azd environment",
        "module graphPermission 'graph/graph-permission.bicep' = if (graphPermissionMode == 'bicep') {\n"
        "  name: 'graph-permission-${resourceToken}'\n  scope: rg\n  params: {\n"
        "    principalId: identity.outputs.principalId\n    appRoleId: graphAppRoleIds[graphAppRole]\n  }\n}\n\n"
        "// Outputs land in the azd environment",
    ),
    M(
        "extension alias visible to main.bicep",
        "infra/bicepconfig.json",
        "",
        '{"extensions": {"microsoftGraphV1": "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"}}\n',
    ),
    M(
        "national clouds default to bicep",
        "infra/main.bicep",
        "((syncCloud == 'global') ? 'bicep' : 'script')",
        "'bicep'",
    ),
    M(
        "postprovision bicep mode uses rest",
        "infra/scripts/postprovision.sh",
        "GRAPH_GRANT_VIA=bicep GRAPH_APP_ROLE_ID",
        "GRAPH_GRANT_VIA=rest GRAPH_APP_ROLE_ID",
    ),
    M(
        "extension alias on the beta types",
        "infra/graph/bicepconfig.json",
        "microsoftgraph/v1.0:1.0.0",
        "microsoftgraph/beta:1.0.0",
    ),
    M(
        "Graph appId typo",
        "infra/graph/graph-permission.bicep",
        "'00000003-0000-0000-c000-000000000000'",
        "'00000003-0000-0000-c000-000000000001'",
    ),
    M(
        "app role assigned on the identity itself",
        "infra/graph/graph-permission.bicep",
        "resourceId: microsoftGraph.id",
        "resourceId: principalId",
    ),
    # --- item 4: names per environment, no takeover ---
    M(
        "fixed event subscription name",
        "infra/main.bicep",
        "var eventSubscriptionName = 'psync-${resourceToken}'",
        "var eventSubscriptionName = 'provisioning-secret-sync'",
    ),
    M(
        "fixed nested deployment name",
        "infra/main.bicep",
        "name: 'keyvault-access-${resourceToken}'",
        "name: 'keyvault-access'",
    ),
    M(
        "token ignores the subscription",
        "infra/main.bicep",
        "uniqueString(subscription().id, environmentName, location)",
        "uniqueString(environmentName, location)",
    ),
    M(
        "subscription name has a default",
        "infra/events.bicep",
        "param subscriptionName string\n",
        "param subscriptionName string = 'provisioning-secret-sync'\n",
    ),
    M(
        "hook takes over another environment's subscription",
        "infra/scripts/subscribe-keyvault-events.sh",
        'usage "Event subscription $EVENT_SUBSCRIPTION_NAME on $topic delivers',
        'echo "Event subscription $EVENT_SUBSCRIPTION_NAME on $topic delivers',
    ),
    M(
        "events deployment name without token",
        "infra/scripts/subscribe-keyvault-events.sh",
        '--name "keyvault-events-$RESOURCE_TOKEN"',
        "--name keyvault-events",
    ),
    M(
        "output the hooks need removed",
        "infra/main.bicep",
        "output EVENT_SUBSCRIPTION_NAME string = eventSubscriptionName\n",
        "",
    ),
    M(
        "postdeploy does not require an output it passes",
        "infra/scripts/subscribe-keyvault-events.sh",
        "    RESOURCE_TOKEN STORAGE_ACCOUNT_ID DEAD_LETTER_CONTAINER; do",
        "    RESOURCE_TOKEN DEAD_LETTER_CONTAINER; do",
    ),
    # --- item 5: the existing topic is referenced ---
    M(
        "topic re-declared instead of existing",
        "infra/events.bicep",
        "resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {",
        "resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {",
    ),
    M("topic created unconditionally", "infra/events.bicep", "= if (createSystemTopic) {", "= {"),
    M(
        "existing topic recreated by the hook",
        "infra/scripts/subscribe-keyvault-events.sh",
        'if [ -n "$topic" ]; then\n  create=false',
        'if [ -n "$topic" ]; then\n  create=true',
    ),
    M("created topic untagged", "infra/events.bicep", "'provisioning-secret-sync': ownerToken", "owner: ownerToken"),
    M(
        "topicType typo",
        "infra/events.bicep",
        "topicType: 'Microsoft.KeyVault.vaults'",
        "topicType: 'Microsoft.KeyVault.vault'",
    ),
    # --- item 6: least privilege ---
    M(
        "queue service URI back",
        "infra/app/function.bicep",
        "  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob\n",
        "  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob\n"
        "  AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue\n",
    ),
    M(
        "queue role back",
        "infra/app/storage.bicep",
        "output name string = storage.name",
        "resource queue 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        "  name: guid(storage.id, principalId, '974c5e8b-45b9-4653-ba55-5f855dd0fb88')\n  scope: storage\n"
        "  properties: {\n    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "'974c5e8b-45b9-4653-ba55-5f855dd0fb88')\n    principalId: principalId\n    principalType: 'ServicePrincipal'\n"
        "  }\n}\n\noutput name string = storage.name",
    ),
    M(
        "Graph role fixed in main.bicep",
        "infra/main.bicep",
        "output GRAPH_APP_ROLE_ID string = graphAppRoleIds[graphAppRole]",
        "output GRAPH_APP_ROLE_ID string = '9b50c33d-700f-43b1-b2eb-87e89b703581'",
    ),
    M(
        "OwnedBy id typo",
        "infra/main.bicep",
        "'18a4783c-866b-4cc7-a460-3d5e5662c884'",
        "'18a4783c-866b-4cc7-a460-3d5e5662c885'",
    ),
    M(
        "host role downgraded",
        "infra/app/storage.bicep",
        "var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'",
        "var storageBlobDataOwner = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'",
    ),
    M(
        "principalType User",
        "infra/app/keyvault-access.bicep",
        "principalType: 'ServicePrincipal'",
        "principalType: 'User'",
    ),
    M(
        "role assignment name not unique",
        "infra/app/keyvault-access.bicep",
        "name: guid(vault.id, principalId, keyVaultSecretsUser)",
        "name: guid(vault.id, keyVaultSecretsUser)",
    ),
    M("shared keys allowed", "infra/app/storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"),
    M(
        "local auth on Application Insights",
        "infra/app/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
    ),
    # --- item 7: dead-lettering ---
    M(
        "dead letters with Event Grid's identity",
        "infra/events.bicep",
        "deadLetterWithResourceIdentity:",
        "deadLetterDestination:",
    ),
    M(
        "dead-letter role on the whole account",
        "infra/app/deadletter-access.bicep",
        "  scope: container\n",
        "  scope: storage\n",
    ),
    M(
        "dead-letter role read-only",
        "infra/app/deadletter-access.bicep",
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    ),
    M(
        "dead-letter endpoint type typo",
        "infra/events.bicep",
        "endpointType: 'StorageBlob'",
        "endpointType: 'StorageBlobs'",
    ),
    M(
        "dead-letter container missing",
        "infra/app/storage.bicep",
        "  name: deadLetterContainerName\n",
        "  name: 'dead'\n",
    ),
    M(
        "dead-letter role principal is the app",
        "infra/events.bicep",
        "principalId: systemTopic.identity.principalId",
        "principalId: ownerToken",
    ),
    M("fewer delivery attempts", "infra/events.bicep", "maxDeliveryAttempts: 30", "maxDeliveryAttempts: 10"),
    # --- item 8: Flex Consumption bounds ---
    M("instance limit below the documented minimum", "infra/main.bicep", "@minValue(40)", "@minValue(1)"),
    M(
        "memory size Flex does not offer",
        "infra/main.bicep",
        "  512\n  2048\n  4096\n",
        "  512\n  1024\n  2048\n  4096\n",
    ),
    # --- item 9: PowerShell exit codes ---
    M(
        "Write-Error under Stop",
        "infra/scripts/subscribe-keyvault-events.ps1",
        'Stop-Hook 2 "$name is not set',
        'Write-Error "$name is not set',
    ),
    M(
        "usage error exits 1 in PowerShell",
        "infra/scripts/grant-graph-permission.ps1",
        'Stop-Hook 2 "usage: grant-graph-permission.ps1',
        'Stop-Hook 1 "usage: grant-graph-permission.ps1',
    ),
    M(
        "az exit code unchecked",
        "infra/scripts/subscribe-keyvault-events.ps1",
        "& az @arguments\nif ($LASTEXITCODE -ne 0) { exit 1 }",
        "& az @arguments",
    ),
    M(
        "Stop-Hook writes to stdout",
        "infra/scripts/common.ps1",
        "[Console]::Error.WriteLine($Message)",
        "Write-Host $Message",
    ),
    M(
        "PowerShell drops a deployment parameter",
        "infra/scripts/subscribe-keyvault-events.ps1",
        ',\n    "enableDeadLetter=$deadLetter"',
        "",
    ),
    M(
        "PowerShell predown leaves the vault role",
        "infra/scripts/predown.ps1",
        "    $deleted = Invoke-Az @('role', 'assignment', 'delete', '--ids', $env:KEY_VAULT_ROLE_ASSIGNMENT_ID, "
        "'--subscription', $subscription)\n",
        "    $deleted = @{ Ok = $true }\n",
    ),
    M(
        "PowerShell drive-qualified variable",
        "infra/scripts/grant-graph-permission.ps1",
        "of ${PrincipalId}: $($listing.Output)",
        "of $PrincipalId: $($listing.Output)",
    ),
    # --- issue 10, item 7: ledger, timer, pause ---
    M("reconcile schedule not set", "infra/app/function.bicep", "  SYNC_RECONCILE_SCHEDULE: reconcileSchedule\n", ""),
    M("paused by default", "infra/main.bicep", "param syncPaused string = 'false'", "param syncPaused string = 'true'"),
    M(
        "five-field schedule",
        "infra/main.bicep",
        "param reconcileSchedule string = '0 0 * * * *'",
        "param reconcileSchedule string = '0 * * * *'",
    ),
    M(
        "ledger container not declared",
        "infra/app/storage.bicep",
        "  name: ledgerContainerName\n",
        "  name: 'ledger'\n",
    ),
    M(
        "ledger setting from the wrong container",
        "infra/main.bicep",
        "ledgerContainerName: storage.outputs.ledgerContainerName",
        "ledgerContainerName: storage.outputs.deadLetterContainerName",
    ),
    M(
        "worker runtime as an app setting",
        "infra/app/function.bicep",
        "  SYNC_CONFIG: syncConfigPath\n",
        "  SYNC_CONFIG: syncConfigPath\n  FUNCTIONS_WORKER_RUNTIME: 'python'\n",
    ),
    M("Python 3.11", "infra/main.bicep", "param pythonVersion string = '3.13'", "param pythonVersion string = '3.11'"),
    M(
        "identity client id from the principal id",
        "infra/main.bicep",
        "identityClientId: identity.outputs.clientId",
        "identityClientId: identity.outputs.principalId",
    ),
    M(
        "parameters file disagrees on the pause default",
        "infra/main.parameters.json",
        "${SYNC_PAUSED=false}",
        "${SYNC_PAUSED=true}",
    ),
    M("parameters file maps an unknown parameter", "infra/main.parameters.json", '"syncPaused": {', '"syncPause": {'),
    # --- more Bicep shape ---
    M(
        "unparenthesized condition pycep mis-reads",
        "infra/main.bicep",
        "name: empty(resourceGroupName) ? '${abbreviations.resourceGroup}${environmentName}' : resourceGroupName",
        "name: !empty(resourceGroupName) ? resourceGroupName : '${abbreviations.resourceGroup}${environmentName}'",
    ),
    M(
        "module passes an unknown param",
        "infra/main.bicep",
        "    keyVaultName: keyVaultName\n",
        "    keyVaultName: keyVaultName\n    bogusParam: 'x'\n",
    ),
    M(
        "azd service tag dropped",
        "infra/app/function.bicep",
        "tags: union(tags, { 'azd-service-name': 'api' })",
        "tags: tags",
    ),
    M(
        "package read with a system identity",
        "infra/app/function.bicep",
        "type: 'UserAssignedIdentity'",
        "type: 'SystemAssignedIdentity'",
    ),
    M("site not Linux", "infra/app/function.bicep", "kind: 'functionapp,linux'", "kind: 'functionapp'"),
    M(
        "events to the HTTP function",
        "infra/events.bicep",
        "param functionName string = 'keyvault_events'",
        "param functionName string = 'sync'",
    ),
    M("an event type dropped", "infra/events.bicep", "        'Microsoft.KeyVault.SecretNearExpiry'\n", ""),
    M(
        "unknown option to az",
        "infra/scripts/subscribe-keyvault-events.sh",
        "--template-file infra/events.bicep",
        "--template infra/events.bicep",
    ),
    # --- azure.yaml, workflow, docs ---
    M(
        "postdeploy failure ignored",
        "azure.yaml",
        "      run: infra/scripts/subscribe-keyvault-events.sh\n      continueOnError: false",
        "      run: infra/scripts/subscribe-keyvault-events.sh\n      continueOnError: true",
    ),
    M(
        "preview without credentials",
        ".github/workflows/infra.yml",
        "    if: ${{ vars.AZURE_CLIENT_ID != '' && vars.AZURE_SUBSCRIPTION_ID != '' }}\n",
        "",
    ),
    M(
        "workflow compiles nothing",
        ".github/workflows/infra.yml",
        'az bicep build --file "$template" --stdout > /dev/null',
        'echo "$template"',
    ),
    M("docs lose the dead-letter path", "docs/operations.md", "PSYNC-<RESOURCE_TOKEN>", "<SUBSCRIPTION>"),
    M("docs lose the ledger container", "docs/operations.md", "`sync-ledger`", "the ledger container", count=3),
]

# Checks that run hook scripts cost seconds; the rest milliseconds.
SLOW = ("grant_script", "postprovision", "postdeploy", "predown_")


def cost(check: Check, mutated: str) -> tuple[int, int]:
    specific = 0 if any(pattern == mutated for pattern in check.reads) else 1
    slow = 2 if "times_out" in check.name else 1 if check.name.startswith(SLOW) else 0
    return (slow, specific)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    root = tmp_path_factory.mktemp("infra-copy")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, root / name)
    yield Tree(root)


def failing_check(tree: Tree, mutated: str) -> str | None:
    """The first check that fails on ``tree`` among those that read ``mutated``."""
    relevant = sorted((c for c in CHECKS if c.depends_on(mutated)), key=lambda c: cost(c, mutated))
    assert relevant, f"no check reads {mutated}"
    for check in relevant:
        try:
            check.run(tree)
        except (AssertionError, subprocess.TimeoutExpired) as error:
            return f"{check.name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return None


def test_the_unmutated_copy_passes_the_checks(copy: Tree) -> None:
    """A mutant counts only if the copy was clean (test_infra.py runs the slow hook checks on the repo itself)."""
    for check in CHECKS:
        if not check.name.startswith(SLOW):
            check.run(copy)
    for relative in ("infra/scripts/predown.sh", "sync-config.json", "infra/graph/bicepconfig.json"):
        assert copy.path(relative).read_bytes() == (ROOT / relative).read_bytes()


def test_mutant_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_the_checks_catch(copy: Tree, mutant: Mutant) -> None:
    path = copy.path(mutant.file)
    original = path.read_text(encoding="utf-8") if path.exists() else None
    if mutant.old:
        assert original is not None, f"{mutant.file} does not exist"
        assert original.count(mutant.old) == mutant.count, (
            f"stale mutant: {mutant.old!r} occurs {original.count(mutant.old)}x"
        )
        path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    else:
        assert original is None, f"{mutant.file} already exists"
        path.write_text(mutant.new, encoding="utf-8")
    try:
        caught = failing_check(copy, mutant.file)
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original, encoding="utf-8")
    assert caught, f"no check noticed: {mutant.name}"
