"""Documented identifiers the templates must use, each with where it is documented.

Role definition ids: Azure built-in roles, https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
App role ids: Microsoft Graph permissions reference, https://learn.microsoft.com/graph/permissions-reference
Which role each identity needs and at which scope:
  - Functions host storage with an identity ("host only": Storage Blob Data Owner; "Timer trigger: no change
    from default requirement"; no queue role for HTTP or Event Grid triggers):
    https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
  - Key Vault secrets read with RBAC: Key Vault Secrets User,
    https://learn.microsoft.com/azure/key-vault/general/rbac-guide
  - Application Insights with local auth disabled: Monitoring Metrics Publisher,
    https://learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication
  - Event Grid dead-lettering with the topic's managed identity to Blob storage: Storage Blob Data Contributor,
    https://learn.microsoft.com/azure/event-grid/add-identity-roles and .../managed-service-identity
"""

from __future__ import annotations

ROLES = {
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# Roles that must not be assigned: HTTP, Event Grid and timer triggers use no queues (issue 12, item 6).
FORBIDDEN_ROLES = {
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
}

# Every role assignment the templates make: (role, type of the scope resource, who gets it).
# "identity": the Function App's user-assigned identity (its principal id, never its client id);
# "system topic": the Key Vault system topic's system-assigned identity.
EXPECTED_ASSIGNMENTS = {
    ("Key Vault Secrets User", "Microsoft.KeyVault/vaults", "identity"),
    ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts", "identity"),
    ("Monitoring Metrics Publisher", "Microsoft.Insights/components", "identity"),
    ("Storage Blob Data Contributor", "Microsoft.Storage/storageAccounts/blobServices/containers", "system topic"),
}

MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
APP_ROLES = {
    "Synchronization.ReadWrite.All": "9b50c33d-700f-43b1-b2eb-87e89b703581",
    "Application.ReadWrite.OwnedBy": "18a4783c-866b-4cc7-a460-3d5e5662c884",
}

# The Microsoft Graph Bicep extension (https://learn.microsoft.com/graph/templates/bicep/whats-new, July 2025:
# "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0", minimum Bicep v0.36.1).
GRAPH_EXTENSION = "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:1.0.0"

# Flex Consumption (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan, "Considerations:
# Scale: The lowest maximum scale is currently 40. The highest currently supported value is 1000", and the
# FC1 stack data Azure PowerShell ships, Az.Functions FunctionsStackFlexData/*/python.json:
# lowestMaximumInstanceCount 40, highestMaximumInstanceCount 1000, instanceMemoryMB 512/2048/4096,
# functionAppConfigProperties.runtime python 3.10-3.13).
FLEX_MAXIMUM_INSTANCES = (40, 1000)
FLEX_MEMORY_SIZES = {512, 2048, 4096}
FLEX_PYTHON_VERSIONS = {"3.10", "3.11", "3.12", "3.13"}
PYTHON_VERSION = "3.13"  # requirements.txt pins azure-functions-runtime for 3.13 (issue 9)

# azd releases that do not delete a pre-existing resource group on `azd down`: Azure/azure-dev CHANGELOG 1.24.1
# (2026-04-17), PR #7698 "only resource groups explicitly created by the deployment are now returned".
AZD_MINIMUM = (1, 24, 1)

# App settings the template must set and their values (the code's defaults where it has them).
LEDGER_CONTAINER = "sync-ledger"
DEAD_LETTER_CONTAINER = "eventgrid-deadletter"
RECONCILE_SCHEDULE = "0 0 * * * *"
