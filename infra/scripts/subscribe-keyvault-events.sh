#!/bin/sh
# azd postdeploy hook (azure.yaml): subscribe the keyvault_events function to the vault's events by
# deploying infra/events.bicep. It runs after the code is deployed because Event Grid refuses an
# AzureFunction endpoint that does not exist yet; it first waits for the function to be indexed.
#
#   - The vault's system topic is looked up: an existing one is only referenced (never re-declared), a
#     missing one is created (tagged provisioning-secret-sync, so predown may delete it once it is empty).
#   - The subscription's name is this environment's (EVENT_SUBSCRIPTION_NAME); if a subscription of that
#     name already points at another function, the hook stops (exit 2) instead of taking it over.
#   - Dead letters go to the DEAD_LETTER_CONTAINER container of the app's storage account, written with
#     the topic's system-assigned identity; an existing topic without one gets no dead-lettering and a warning.
#
# Settings (azd env set NAME VALUE):
#   KEY_VAULT_EVENT_SECRETS               comma-separated secret names to subscribe to (max 25); default: all
#   KEY_VAULT_SYSTEM_TOPIC_NAME           the vault's system topic, if you cannot list the subscription's topics
#   KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP its resource group; default: the vault's
# Needs the Azure CLI signed in (`az login`): `azd auth login` does not sign in the Azure CLI.
# Re-run alone with: azd hooks run postdeploy. Exit codes: 0 subscribed, 1 failed, 2 refused.
set -eu
cd "$(dirname "$0")/../.."
# shellcheck source=infra/scripts/common.sh
. infra/scripts/common.sh

for name in AZURE_FUNCTION_APP_ID KEY_VAULT_NAME KEY_VAULT_RESOURCE_GROUP KEY_VAULT_ID EVENT_SUBSCRIPTION_NAME \
    RESOURCE_TOKEN STORAGE_ACCOUNT_ID DEAD_LETTER_CONTAINER; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || usage "$name is not set: run azd provision first (or azd env set $name ...)"
done
subscription="${KEY_VAULT_SUBSCRIPTION_ID:-${AZURE_SUBSCRIPTION_ID:-}}"
[ -n "$subscription" ] || usage "KEY_VAULT_SUBSCRIPTION_ID is not set: run azd provision first"
function_id="$AZURE_FUNCTION_APP_ID/functions/keyvault_events"
attempts=30
wait_seconds=10

az account show --output none 2>/dev/null ||
  fail "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postdeploy'."

# The function appears in ARM once the host has indexed the deployed code.
attempt=1
until az resource show --ids "$function_id" --output none 2>/dev/null; do
  [ "$attempt" -lt "$attempts" ] ||
    fail "keyvault_events is not listed on $AZURE_FUNCTION_APP_ID after $attempt attempts: check the deployment logs."
  echo "waiting for the keyvault_events function to be indexed ($attempt/$attempts) ..."
  attempt=$((attempt + 1))
  sleep "$wait_seconds"
done

find_system_topic "$KEY_VAULT_ID" "$subscription"
dead_letter=true
if [ -n "$topic" ]; then
  create=false
  echo "System topic:             $topic (resource group $topic_group), shared: only referenced"
  case "$topic_identity" in
    *SystemAssigned*) ;;
    *)
      dead_letter=false
      echo "WARNING: system topic $topic has no system-assigned identity, so undeliverable events are not dead-lettered." >&2
      echo "  Enable it (az eventgrid system-topic update --name $topic --resource-group $topic_group --identity systemassigned)" >&2
      echo "  and run 'azd hooks run postdeploy' again." >&2
      ;;
  esac
  # Never take over a subscription another environment (or anyone else) owns.
  if destination=$(az eventgrid system-topic event-subscription show --name "$EVENT_SUBSCRIPTION_NAME" \
      --system-topic-name "$topic" --resource-group "$topic_group" --subscription "$subscription" \
      --query destination.resourceId --output tsv 2>/dev/null); then
    [ "$(lower "$destination")" = "$(lower "$function_id")" ] ||
      usage "Event subscription $EVENT_SUBSCRIPTION_NAME on $topic delivers to $destination, not to this environment's $function_id: refusing to change it."
  fi
else
  create=true
  topic="${KEY_VAULT_SYSTEM_TOPIC_NAME:-evgt-$KEY_VAULT_NAME}"
  topic_group="${KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP:-$KEY_VAULT_RESOURCE_GROUP}"
  echo "System topic:             $topic (resource group $topic_group), created now"
fi

echo "Subscribing keyvault_events to Key Vault $KEY_VAULT_NAME events as $EVENT_SUBSCRIPTION_NAME ..."
set -- \
  "keyVaultName=$KEY_VAULT_NAME" \
  "keyVaultResourceGroupName=$KEY_VAULT_RESOURCE_GROUP" \
  "functionAppId=$AZURE_FUNCTION_APP_ID" \
  "systemTopicName=$topic" \
  "createSystemTopic=$create" \
  "subscriptionName=$EVENT_SUBSCRIPTION_NAME" \
  "ownerToken=$RESOURCE_TOKEN" \
  "deadLetterStorageAccountId=$STORAGE_ACCOUNT_ID" \
  "deadLetterContainerName=$DEAD_LETTER_CONTAINER" \
  "enableDeadLetter=$dead_letter"
if [ -n "${KEY_VAULT_EVENT_SECRETS:-}" ]; then
  set -- "$@" "secretNames=$KEY_VAULT_EVENT_SECRETS"
fi
az deployment group create \
  --subscription "$subscription" \
  --resource-group "$topic_group" \
  --name "keyvault-events-$RESOURCE_TOKEN" \
  --template-file infra/events.bicep \
  --query "properties.outputs" --output json \
  --parameters "$@"
