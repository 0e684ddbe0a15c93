#!/bin/sh
# azd postdeploy hook (azure.yaml): subscribe the keyvault_events function to the vault's events by
# deploying infra/events.bicep (Event Grid system topic + subscription, filtered to
# SecretNewVersionCreated, SecretNearExpiry and SecretExpired). It runs after the code is deployed because
# Event Grid refuses an AzureFunction endpoint that does not exist yet; it first waits for the function.
#
# Settings (azd env set NAME VALUE):
#   KEY_VAULT_EVENT_SECRETS               comma-separated secret names to subscribe to (max 25); default: all
#   KEY_VAULT_SYSTEM_TOPIC_NAME           the vault's existing system topic (a vault can have only one)
#   KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP its resource group; default: the vault's
# Needs the Azure CLI signed in (`az login`): `azd auth login` does not sign in the Azure CLI.
# Re-run alone with: azd hooks run postdeploy
set -eu

: "${AZURE_FUNCTION_APP_ID:?not set: run azd provision first}"
: "${KEY_VAULT_NAME:?not set: azd env set KEY_VAULT_NAME <vault name>}"
: "${KEY_VAULT_RESOURCE_GROUP:?not set: azd env set KEY_VAULT_RESOURCE_GROUP <resource group>}"
subscription="${KEY_VAULT_SUBSCRIPTION_ID:-${AZURE_SUBSCRIPTION_ID:-}}"
topic_group="${KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP:-$KEY_VAULT_RESOURCE_GROUP}"
function_id="$AZURE_FUNCTION_APP_ID/functions/keyvault_events"

if ! az account show --output none 2>/dev/null; then
  echo "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postdeploy'." >&2
  exit 1
fi

# The function appears in ARM once the host has indexed the deployed code.
attempt=0
until az resource show --ids "$function_id" --output none 2>/dev/null; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 30 ]; then
    echo "keyvault_events is not listed on $AZURE_FUNCTION_APP_ID after 5 minutes: check the deployment logs." >&2
    exit 1
  fi
  echo "waiting for the keyvault_events function to be indexed ($attempt/30) ..."
  sleep 10
done

echo "Subscribing keyvault_events to Key Vault ${KEY_VAULT_NAME} events ..."
az deployment group create \
  ${subscription:+--subscription "$subscription"} \
  --resource-group "$topic_group" \
  --name "keyvault-events-${AZURE_ENV_NAME:-sync}" \
  --template-file infra/events.bicep \
  --parameters \
    keyVaultName="$KEY_VAULT_NAME" \
    keyVaultResourceGroupName="$KEY_VAULT_RESOURCE_GROUP" \
    functionAppId="$AZURE_FUNCTION_APP_ID" \
    ${KEY_VAULT_SYSTEM_TOPIC_NAME:+"systemTopicName=$KEY_VAULT_SYSTEM_TOPIC_NAME"} \
    ${KEY_VAULT_EVENT_SECRETS:+"secretNames=$KEY_VAULT_EVENT_SECRETS"} \
  --query "properties.outputs" --output json
