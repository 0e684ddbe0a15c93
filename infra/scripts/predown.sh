#!/bin/sh
# azd predown hook (azure.yaml): remove what this environment created OUTSIDE its resource group, before
# `azd down` deletes the group (and with it the identity, the storage and the dead-letter role):
#   - the Event Grid subscription EVENT_SUBSCRIPTION_NAME on the vault's system topic, if it delivers to
#     this environment's function (anyone else's is left alone);
#   - the system topic itself, only if this product created it (tag provisioning-secret-sync) and no
#     subscription is left on it;
#   - the Key Vault Secrets User role assignment on the vault (KEY_VAULT_ROLE_ASSIGNMENT_ID).
# Left behind on purpose: the deployment history entries keyvault-access-<token> and keyvault-events-<token>
# in the vault's (or topic's) resource group (records, no resources). The Graph app role assignment goes
# with the identity's service principal when azd down deletes the identity.
# SYNC_PREDOWN_SKIP=true skips all of this (azd env set SYNC_PREDOWN_SKIP true). Exit codes: 0 done, 1 failed.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=infra/scripts/common.sh
. infra/scripts/common.sh

if [ "${SYNC_PREDOWN_SKIP:-false}" = true ]; then
  echo "SYNC_PREDOWN_SKIP=true: leaving the event subscription, system topic and vault role assignment in place."
  exit 0
fi
subscription="${KEY_VAULT_SUBSCRIPTION_ID:-${AZURE_SUBSCRIPTION_ID:-}}"
if [ -z "${KEY_VAULT_ID:-}" ] || [ -z "${EVENT_SUBSCRIPTION_NAME:-}" ] || [ -z "$subscription" ]; then
  echo "Nothing provisioned by this environment (KEY_VAULT_ID / EVENT_SUBSCRIPTION_NAME unset): nothing to clean up."
  exit 0
fi
az account show --output none 2>/dev/null ||
  fail "The Azure CLI is not signed in: run 'az login', then 'azd down' again (or azd env set SYNC_PREDOWN_SKIP true)."
function_id="${AZURE_FUNCTION_APP_ID:-}/functions/keyvault_events"

find_system_topic "$KEY_VAULT_ID" "$subscription"
if [ -z "$topic" ]; then
  echo "Key Vault $KEY_VAULT_NAME has no system topic: no event subscription to remove."
else
  if destination=$(az eventgrid system-topic event-subscription show --name "$EVENT_SUBSCRIPTION_NAME" \
      --system-topic-name "$topic" --resource-group "$topic_group" --subscription "$subscription" \
      --query destination.resourceId --output tsv 2>/dev/null); then
    if [ "$(lower "$destination")" = "$(lower "$function_id")" ]; then
      az eventgrid system-topic event-subscription delete --name "$EVENT_SUBSCRIPTION_NAME" \
        --system-topic-name "$topic" --resource-group "$topic_group" --subscription "$subscription" --yes
      echo "Deleted event subscription $EVENT_SUBSCRIPTION_NAME from $topic."
    else
      echo "Event subscription $EVENT_SUBSCRIPTION_NAME on $topic delivers to $destination: not this environment's, left alone."
    fi
  fi
  if [ -n "$topic_owner" ] && [ "$topic_owner" != None ]; then
    remaining=$(az eventgrid system-topic event-subscription list --system-topic-name "$topic" \
      --resource-group "$topic_group" --subscription "$subscription" --query "length(@)" --output tsv)
    if [ "$remaining" = "0" ]; then
      az eventgrid system-topic delete --name "$topic" --resource-group "$topic_group" --subscription "$subscription" --yes
      echo "Deleted system topic $topic (created by provisioning-secret-sync, no subscriptions left)."
    else
      echo "System topic $topic still has $remaining subscription(s): left in place."
    fi
  else
    echo "System topic $topic was not created by provisioning-secret-sync: left in place."
  fi
fi

if [ -n "${KEY_VAULT_ROLE_ASSIGNMENT_ID:-}" ]; then
  az role assignment delete --ids "$KEY_VAULT_ROLE_ASSIGNMENT_ID" --subscription "$subscription"
  echo "Deleted the Key Vault Secrets User role assignment on $KEY_VAULT_NAME."
fi
