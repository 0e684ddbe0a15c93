# azd postdeploy hook (azure.yaml), the PowerShell twin of subscribe-keyvault-events.sh: subscribe the
# keyvault_events function to the vault's events by deploying infra/events.bicep once the function exists.
# An existing system topic is only referenced, a missing one is created (tagged provisioning-secret-sync);
# a subscription of this environment's name that delivers elsewhere is never taken over (exit 2); dead
# letters go to DEAD_LETTER_CONTAINER, written with the topic's system-assigned identity.
#
# Settings (azd env set NAME VALUE):
#   KEY_VAULT_EVENT_SECRETS               comma-separated secret names to subscribe to (max 25); default: all
#   KEY_VAULT_SYSTEM_TOPIC_NAME           the vault's system topic, if you cannot list the subscription's topics
#   KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP its resource group; default: the vault's
# Needs the Azure CLI signed in (`az login`): `azd auth login` does not sign in the Azure CLI.
# Re-run alone with: azd hooks run postdeploy. Exit codes: 0 subscribed, 1 failed, 2 refused.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')
. "$PSScriptRoot/common.ps1"

foreach ($name in 'AZURE_FUNCTION_APP_ID', 'KEY_VAULT_NAME', 'KEY_VAULT_RESOURCE_GROUP', 'KEY_VAULT_ID',
    'EVENT_SUBSCRIPTION_NAME', 'RESOURCE_TOKEN', 'STORAGE_ACCOUNT_ID', 'DEAD_LETTER_CONTAINER') {
    if (-not [Environment]::GetEnvironmentVariable($name)) {
        Stop-Hook 2 "$name is not set: run azd provision first (or azd env set $name ...)"
    }
}
$subscription = if ($env:KEY_VAULT_SUBSCRIPTION_ID) { $env:KEY_VAULT_SUBSCRIPTION_ID } else { $env:AZURE_SUBSCRIPTION_ID }
if (-not $subscription) { Stop-Hook 2 "KEY_VAULT_SUBSCRIPTION_ID is not set: run azd provision first" }
$functionId = "$env:AZURE_FUNCTION_APP_ID/functions/keyvault_events"
$attempts = 30
$waitSeconds = 10

if (-not (Invoke-Az @('account', 'show', '--output', 'none')).Ok) {
    Stop-Hook 1 "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postdeploy'."
}

# The function appears in ARM once the host has indexed the deployed code.
for ($attempt = 1; ; $attempt++) {
    if ((Invoke-Az @('resource', 'show', '--ids', $functionId, '--output', 'none')).Ok) { break }
    if ($attempt -ge $attempts) {
        Stop-Hook 1 "keyvault_events is not listed on $env:AZURE_FUNCTION_APP_ID after $attempt attempts: check the deployment logs."
    }
    Write-Host "waiting for the keyvault_events function to be indexed ($attempt/$attempts) ..."
    Start-Sleep -Seconds $waitSeconds
}

$found = Find-SystemTopic $env:KEY_VAULT_ID $subscription
$deadLetter = 'true'
if ($found) {
    $create = 'false'
    $topic = $found.Name
    $topicGroup = $found.Group
    Write-Host "System topic:             $topic (resource group $topicGroup), shared: only referenced"
    if ($found.Identity -notmatch 'SystemAssigned') {
        $deadLetter = 'false'
        Write-Warning "System topic $topic has no system-assigned identity, so undeliverable events are not dead-lettered. Enable it (az eventgrid system-topic update --name $topic --resource-group $topicGroup --identity systemassigned) and run 'azd hooks run postdeploy' again."
    }
    # Never take over a subscription another environment (or anyone else) owns.
    $existing = Invoke-Az @('eventgrid', 'system-topic', 'event-subscription', 'show', '--name', $env:EVENT_SUBSCRIPTION_NAME,
        '--system-topic-name', $topic, '--resource-group', $topicGroup, '--subscription', $subscription,
        '--query', 'destination.resourceId', '--output', 'tsv')
    if ($existing.Ok -and ($existing.Output.Trim().ToLowerInvariant() -ne $functionId.ToLowerInvariant())) {
        Stop-Hook 2 "Event subscription $env:EVENT_SUBSCRIPTION_NAME on $topic delivers to $($existing.Output.Trim()), not to this environment's ${functionId}: refusing to change it."
    }
} else {
    $create = 'true'
    $topic = if ($env:KEY_VAULT_SYSTEM_TOPIC_NAME) { $env:KEY_VAULT_SYSTEM_TOPIC_NAME } else { "evgt-$env:KEY_VAULT_NAME" }
    $topicGroup = if ($env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP) { $env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP } else { $env:KEY_VAULT_RESOURCE_GROUP }
    Write-Host "System topic:             $topic (resource group $topicGroup), created now"
}

Write-Host "Subscribing keyvault_events to Key Vault $env:KEY_VAULT_NAME events as $env:EVENT_SUBSCRIPTION_NAME ..."
$arguments = @(
    'deployment', 'group', 'create',
    '--subscription', $subscription,
    '--resource-group', $topicGroup,
    '--name', "keyvault-events-$env:RESOURCE_TOKEN",
    '--template-file', 'infra/events.bicep',
    '--query', 'properties.outputs', '--output', 'json',
    '--parameters',
    "keyVaultName=$env:KEY_VAULT_NAME",
    "keyVaultResourceGroupName=$env:KEY_VAULT_RESOURCE_GROUP",
    "functionAppId=$env:AZURE_FUNCTION_APP_ID",
    "systemTopicName=$topic",
    "createSystemTopic=$create",
    "subscriptionName=$env:EVENT_SUBSCRIPTION_NAME",
    "ownerToken=$env:RESOURCE_TOKEN",
    "deadLetterStorageAccountId=$env:STORAGE_ACCOUNT_ID",
    "deadLetterContainerName=$env:DEAD_LETTER_CONTAINER",
    "enableDeadLetter=$deadLetter"
)
if ($env:KEY_VAULT_EVENT_SECRETS) { $arguments += "secretNames=$env:KEY_VAULT_EVENT_SECRETS" }
& az @arguments
if ($LASTEXITCODE -ne 0) { exit 1 }
