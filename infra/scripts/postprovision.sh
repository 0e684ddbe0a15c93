#!/bin/sh
# azd postprovision hook (azure.yaml). Runs after infra/main.bicep with its outputs in the environment.
#   GRAPH_PERMISSION_GRANT=bicep   the Graph app role was assigned by main.bicep; nothing to do
#   GRAPH_PERMISSION_GRANT=script  assign it now with grant-graph-permission.sh (az CLI, Privileged Role Administrator)
#   GRAPH_PERMISSION_GRANT=none    print the command an administrator runs later
# It also warns while sync-config.json still holds the example's placeholder ids.
set -eu

echo "Function App:             ${AZURE_FUNCTION_APP_NAME:-?}"
echo "Managed identity:         client id ${MANAGED_IDENTITY_CLIENT_ID:-?}, object id ${MANAGED_IDENTITY_PRINCIPAL_ID:-?}"
echo "Key Vault Secrets User:   granted on vault ${KEY_VAULT_NAME:-?} (resource group ${KEY_VAULT_RESOURCE_GROUP:-?})"

case "${GRAPH_PERMISSION_GRANT:-bicep}" in
  script)
    echo "Graph permission:         granting Synchronization.ReadWrite.All with infra/scripts/grant-graph-permission.sh"
    sh infra/scripts/grant-graph-permission.sh "${MANAGED_IDENTITY_PRINCIPAL_ID:-}" "${GRAPH_ROOT:-https://graph.microsoft.com}"
    ;;
  none)
    echo "Graph permission:         NOT granted (GRAPH_PERMISSION_GRANT=none). A Privileged Role Administrator runs:"
    echo "  sh infra/scripts/grant-graph-permission.sh ${MANAGED_IDENTITY_PRINCIPAL_ID:-<principal id>} ${GRAPH_ROOT:-https://graph.microsoft.com}"
    ;;
  *)
    echo "Graph permission:         Synchronization.ReadWrite.All assigned by the Microsoft Graph Bicep extension"
    ;;
esac

if grep -q '00000000-0000-0000-0000-0000000000' sync-config.json 2>/dev/null; then
  echo "WARNING: sync-config.json still holds the example's placeholder ids: put your targets in it before 'azd deploy'." >&2
fi
