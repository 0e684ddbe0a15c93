#!/bin/sh
# Grant the Function App's managed identity its Microsoft Graph APPLICATION permission (an app role
# assignment on the Microsoft Graph service principal, appId 00000003-0000-0000-c000-000000000000; the
# portal cannot grant app roles to a managed identity). Run by the postprovision hook, or by an
# administrator (GRAPH_PERMISSION_GRANT=none).
#
#   1. waits until the identity's service principal is readable in Graph: a managed identity created
#      moments ago may not have replicated yet (msgraph-bicep-types #193, "Not a valid reference update");
#   2. leaves an existing assignment alone (re-creating one conflicts: msgraph-bicep-types #161);
#   3. creates it - GRAPH_GRANT_VIA=rest (default) with `az rest`, GRAPH_GRANT_VIA=bicep by deploying
#      infra/graph/graph-permission.bicep (Microsoft Graph Bicep extension) - and retries replication errors.
#
# Usage: infra/scripts/grant-graph-permission.sh [PRINCIPAL_ID] [GRAPH_ROOT]
#   PRINCIPAL_ID       object (principal) id of the managed identity; default $MANAGED_IDENTITY_PRINCIPAL_ID
#   GRAPH_ROOT         https://graph.microsoft.com (default, or $GRAPH_ROOT), https://graph.microsoft.us,
#                      https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn
#   GRAPH_APP_ROLE_ID  9b50c33d-700f-43b1-b2eb-87e89b703581 (Synchronization.ReadWrite.All, default) or
#                      18a4783c-866b-4cc7-a460-3d5e5662c884 (Application.ReadWrite.OwnedBy)
#   GRAPH_GRANT_VIA    rest (default) or bicep; bicep also needs AZURE_RESOURCE_GROUP and RESOURCE_TOKEN
# Needs: the Azure CLI signed in (`az login`; `az cloud set` first for a national cloud) as a Privileged Role
# Administrator or Global Administrator. Exit codes: 0 granted or already there, 1 failed, 2 wrong usage.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=infra/scripts/common.sh
. infra/scripts/common.sh

principal="${1:-${MANAGED_IDENTITY_PRINCIPAL_ID:-}}"
graph="${2:-${GRAPH_ROOT:-https://graph.microsoft.com}}"
graph="${graph%/}"
role="${GRAPH_APP_ROLE_ID:-9b50c33d-700f-43b1-b2eb-87e89b703581}"
via="${GRAPH_GRANT_VIA:-rest}"
graph_app_id="00000003-0000-0000-c000-000000000000"
# Replication usually takes seconds; give it two minutes, then up to 5 grant attempts 15 s apart.
visible_attempts=24
visible_wait=5
grant_attempts=5
grant_wait=15

hex='[0-9a-fA-F]'
guid="$hex$hex$hex$hex$hex$hex$hex$hex-$hex$hex$hex$hex-$hex$hex$hex$hex-$hex$hex$hex$hex-$hex$hex$hex$hex$hex$hex$hex$hex$hex$hex$hex$hex"
# shellcheck disable=SC2254 # $guid is a pattern on purpose
case "$principal" in
  $guid) ;;
  *) usage "usage: $0 PRINCIPAL_ID [GRAPH_ROOT]  (PRINCIPAL_ID: the managed identity's object id)" ;;
esac
case "$graph" in
  https://graph.microsoft.com|https://graph.microsoft.us|https://dod-graph.microsoft.us|https://microsoftgraph.chinacloudapi.cn) ;;
  *) usage "GRAPH_ROOT must be one of the Microsoft Graph national cloud roots, not '$graph'" ;;
esac
case "$role" in
  9b50c33d-700f-43b1-b2eb-87e89b703581|18a4783c-866b-4cc7-a460-3d5e5662c884) ;;
  *) usage "GRAPH_APP_ROLE_ID must be Synchronization.ReadWrite.All (9b50c33d-...) or Application.ReadWrite.OwnedBy (18a4783c-...)" ;;
esac
case "$via" in
  rest) ;;
  bicep)
    [ -n "${AZURE_RESOURCE_GROUP:-}" ] && [ -n "${RESOURCE_TOKEN:-}" ] ||
      usage "GRAPH_GRANT_VIA=bicep needs AZURE_RESOURCE_GROUP and RESOURCE_TOKEN (outputs of azd provision)"
    ;;
  *) usage "GRAPH_GRANT_VIA must be rest or bicep, not '$via'" ;;
esac

az account show --output none 2>/dev/null ||
  fail "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postprovision'."

# 1. The new identity's service principal must be visible before anything can be assigned to it.
attempt=1
while ! error=$(az rest --method get --resource "$graph" \
    --url "$graph/v1.0/servicePrincipals/$principal?\$select=id" --output none 2>&1); do
  case "$error" in
    *Request_ResourceNotFound*|*"does not exist"*) ;;
    *) printf '%s\n' "$error" >&2; fail "Cannot read service principal $principal in Microsoft Graph (see above)." ;;
  esac
  [ "$attempt" -lt "$visible_attempts" ] ||
    fail "Service principal $principal is still not visible in Microsoft Graph after $attempt attempts: re-run 'azd hooks run postprovision' in a few minutes."
  echo "waiting for service principal $principal to replicate ($attempt/$visible_attempts) ..."
  attempt=$((attempt + 1))
  sleep "$visible_wait"
done

# 2. Already assigned: nothing to do (idempotent re-runs).
graph_sp=$(az rest --method get --resource "$graph" \
  --url "$graph/v1.0/servicePrincipals(appId='$graph_app_id')?\$select=id" --query id --output tsv)
existing=$(az rest --method get --resource "$graph" \
  --url "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \
  --query "length(value[?appRoleId=='$role' && resourceId=='$graph_sp'])" --output tsv)
if [ "$existing" != "0" ]; then
  echo "Microsoft Graph app role $role is already assigned to $principal."
  exit 0
fi

# 3. Assign, retrying only the replication errors a new identity causes.
grant() {
  if [ "$via" = bicep ]; then
    az deployment group create --resource-group "$AZURE_RESOURCE_GROUP" --name "graph-permission-$RESOURCE_TOKEN" \
      --template-file infra/graph/graph-permission.bicep --output none \
      --parameters "principalId=$principal" "appRoleId=$role"
  else
    az rest --method post --resource "$graph" \
      --url "$graph/v1.0/servicePrincipals/$principal/appRoleAssignments" \
      --headers "Content-Type=application/json" \
      --body "{\"principalId\": \"$principal\", \"resourceId\": \"$graph_sp\", \"appRoleId\": \"$role\"}" \
      --output none
  fi
}
attempt=1
while ! error=$(grant 2>&1); do
  case "$error" in
    *"Not a valid reference update"*|*Request_ResourceNotFound*|*"does not exist or one of its queried reference-property objects are not present"*) ;;
    *) printf '%s\n' "$error" >&2; fail "Assigning Microsoft Graph app role $role to $principal failed (see above)." ;;
  esac
  [ "$attempt" -lt "$grant_attempts" ] ||
    fail "Microsoft Graph still rejects the new identity after $attempt attempts (replication): re-run 'azd hooks run postprovision'."
  echo "Microsoft Graph has not replicated $principal yet; retrying ($attempt/$grant_attempts) ..."
  attempt=$((attempt + 1))
  sleep "$grant_wait"
done
echo "Assigned Microsoft Graph app role $role to $principal (via $via)."
echo "New tokens carry it; a running app picks it up when its cached token expires (up to 24 h) or on restart."
