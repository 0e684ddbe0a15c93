#!/bin/sh
# Grant the Function App's managed identity the Microsoft Graph APPLICATION permission
# Synchronization.ReadWrite.All (app role 9b50c33d-700f-43b1-b2eb-87e89b703581) with `az rest`:
# an app role assignment on the Microsoft Graph service principal (appId 00000003-0000-0000-c000-000000000000).
# The portal cannot grant app roles to a managed identity.
#
# For tenants or clouds that cannot use the Microsoft Graph Bicep extension (azd env set
# GRAPH_PERMISSION_GRANT script|none). Idempotent: an existing assignment is left alone.
#
# Usage: infra/scripts/grant-graph-permission.sh [PRINCIPAL_ID] [GRAPH_ROOT]
#   PRINCIPAL_ID  object (principal) id of the managed identity; default $MANAGED_IDENTITY_PRINCIPAL_ID
#                 (an output of `azd provision`, in .azure/<env>/.env)
#   GRAPH_ROOT    https://graph.microsoft.com (default, or $GRAPH_ROOT), https://graph.microsoft.us,
#                 https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn
# Needs: the Azure CLI signed in to the tenant (`az login`; `az cloud set` first for a national cloud) as a
# Privileged Role Administrator or Global Administrator.
set -eu

principal="${1:-${MANAGED_IDENTITY_PRINCIPAL_ID:-}}"
graph="${2:-${GRAPH_ROOT:-https://graph.microsoft.com}}"
graph="${graph%/}"
role="${GRAPH_APP_ROLE_ID:-9b50c33d-700f-43b1-b2eb-87e89b703581}"
graph_app_id="00000003-0000-0000-c000-000000000000"

guid='[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-*'
case "$principal" in
  $guid) ;;
  *) echo "usage: $0 PRINCIPAL_ID [GRAPH_ROOT]  (PRINCIPAL_ID: the managed identity's object id)" >&2; exit 2 ;;
esac
case "$graph" in
  https://graph.microsoft.com|https://graph.microsoft.us|https://dod-graph.microsoft.us|https://microsoftgraph.chinacloudapi.cn) ;;
  *) echo "GRAPH_ROOT must be one of the Microsoft Graph national cloud roots, not '$graph'" >&2; exit 2 ;;
esac

graph_sp=$(az rest --method get --resource "$graph" \
  --url "$graph/v1.0/servicePrincipals(appId='$graph_app_id')?\$select=id" --query id --output tsv)
existing=$(az rest --method get --resource "$graph" \
  --url "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \
  --query "length(value[?appRoleId=='$role' && resourceId=='$graph_sp'])" --output tsv)
if [ "$existing" != "0" ]; then
  echo "Microsoft Graph app role $role is already assigned to $principal."
  exit 0
fi
az rest --method post --resource "$graph" \
  --url "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \
  --headers "Content-Type=application/json" \
  --body "{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$role\"}" \
  --output none
echo "Assigned Microsoft Graph app role $role (Synchronization.ReadWrite.All) to $principal."
echo "New tokens carry it; a running app picks it up when its cached token expires (up to 24 h) or on restart."
