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
$ErrorActionPreference = 'Stop'

foreach ($name in 'AZURE_FUNCTION_APP_ID', 'KEY_VAULT_NAME', 'KEY_VAULT_RESOURCE_GROUP') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Write-Error "$name is not set: run azd provision first (or azd env set $name ...)"
        exit 1
    }
}
$subscription = if ($env:KEY_VAULT_SUBSCRIPTION_ID) { $env:KEY_VAULT_SUBSCRIPTION_ID } else { $env:AZURE_SUBSCRIPTION_ID }
$topicGroup = if ($env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP) { $env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP } else { $env:KEY_VAULT_RESOURCE_GROUP }
$functionId = "$env:AZURE_FUNCTION_APP_ID/functions/keyvault_events"

az account show --output none 2>$null
if ($LASTEXITCODE -ne 0) {
    Write-Error "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postdeploy'."
    exit 1
}

# The function appears in ARM once the host has indexed the deployed code.
for ($attempt = 1; ; $attempt++) {
    az resource show --ids $functionId --output none 2>$null
    if ($LASTEXITCODE -eq 0) { break }
    if ($attempt -ge 30) {
        Write-Error "keyvault_events is not listed on $env:AZURE_FUNCTION_APP_ID after 5 minutes: check the deployment logs."
        exit 1
    }
    Write-Host "waiting for the keyvault_events function to be indexed ($attempt/30) ..."
    Start-Sleep -Seconds 10
}

Write-Host "Subscribing keyvault_events to Key Vault $env:KEY_VAULT_NAME events ..."
$arguments = @(
    'deployment', 'group', 'create',
    '--resource-group', $topicGroup,
    '--name', "keyvault-events-$(if ($env:AZURE_ENV_NAME) { $env:AZURE_ENV_NAME } else { 'sync' })",
    '--template-file', 'infra/events.bicep',
    '--parameters',
    "keyVaultName=$env:KEY_VAULT_NAME",
    "keyVaultResourceGroupName=$env:KEY_VAULT_RESOURCE_GROUP",
    "functionAppId=$env:AZURE_FUNCTION_APP_ID"
)
if ($env:KEY_VAULT_SYSTEM_TOPIC_NAME) { $arguments += "systemTopicName=$env:KEY_VAULT_SYSTEM_TOPIC_NAME" }
if ($env:KEY_VAULT_EVENT_SECRETS) { $arguments += "secretNames=$env:KEY_VAULT_EVENT_SECRETS" }
$arguments += @('--query', 'properties.outputs', '--output', 'json')
if ($subscription) { $arguments += @('--subscription', $subscription) }
az @arguments
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
