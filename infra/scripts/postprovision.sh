#!/bin/sh
# azd postprovision hook (azure.yaml). Runs after infra/main.bicep with its outputs in the environment.
#   GRAPH_PERMISSION_MODE=bicep   grant the Graph app role by deploying infra/graph/graph-permission.bicep
#   GRAPH_PERMISSION_MODE=script  grant it with the Graph REST API (az rest)
#   GRAPH_PERMISSION_MODE=none    print the command an administrator runs later
# (main.bicep's output; GRAPH_PERMISSION_GRANT chooses it, default bicep in the global cloud and script in
# national clouds). Both grant paths wait for the new identity to replicate and retry, see
# grant-graph-permission.sh. It also warns while sync-config.json still holds the example's placeholder ids.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=infra/scripts/common.sh
. infra/scripts/common.sh

graph="${GRAPH_ROOT:-https://graph.microsoft.com}"
role="${GRAPH_APP_ROLE_ID:-9b50c33d-700f-43b1-b2eb-87e89b703581}"
principal="${MANAGED_IDENTITY_PRINCIPAL_ID:-}"

echo "Function App:             ${AZURE_FUNCTION_APP_NAME:-?}"
echo "Managed identity:         client id ${MANAGED_IDENTITY_CLIENT_ID:-?}, object id ${principal:-?}"
echo "Key Vault Secrets User:   granted on vault ${KEY_VAULT_NAME:-?} (resource group ${KEY_VAULT_RESOURCE_GROUP:-?})"

case "${GRAPH_PERMISSION_MODE:-bicep}" in
  bicep)
    echo "Graph permission:         granting app role $role (infra/graph/graph-permission.bicep)"
    GRAPH_GRANT_VIA=bicep GRAPH_APP_ROLE_ID="$role" sh infra/scripts/grant-graph-permission.sh "$principal" "$graph"
    ;;
  script)
    echo "Graph permission:         granting app role $role (Graph REST API)"
    GRAPH_GRANT_VIA=rest GRAPH_APP_ROLE_ID="$role" sh infra/scripts/grant-graph-permission.sh "$principal" "$graph"
    ;;
  none)
    echo "Graph permission:         NOT granted (GRAPH_PERMISSION_GRANT=none). A Privileged Role Administrator runs:"
    echo "  GRAPH_APP_ROLE_ID=$role sh infra/scripts/grant-graph-permission.sh ${principal:-<principal id>} $graph"
    ;;
  *)
    usage "GRAPH_PERMISSION_MODE must be bicep, script or none, not '${GRAPH_PERMISSION_MODE}'"
    ;;
esac

if grep -q '00000000-0000-0000-0000-0000000000' sync-config.json 2>/dev/null; then
  echo "WARNING: sync-config.json still holds the example's placeholder ids: put your targets in it before 'azd deploy'." >&2
fi
