# azd predown hook (azure.yaml), the PowerShell twin of predown.sh: before `azd down` deletes the resource
# group, remove what this environment created outside it - the Event Grid subscription EVENT_SUBSCRIPTION_NAME
# (only if it delivers to this environment's function), the system topic (only if provisioning-secret-sync
# created it and no subscription is left) and the Key Vault Secrets User role assignment on the vault.
# Left behind on purpose: the deployment history entries keyvault-access-<token> and keyvault-events-<token>.
# SYNC_PREDOWN_SKIP=true skips all of this. Exit codes: 0 done, 1 failed.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')
. "$PSScriptRoot/common.ps1"

if ($env:SYNC_PREDOWN_SKIP -eq 'true') {
    Write-Host "SYNC_PREDOWN_SKIP=true: leaving the event subscription, system topic and vault role assignment in place."
    exit 0
}
$subscription = if ($env:KEY_VAULT_SUBSCRIPTION_ID) { $env:KEY_VAULT_SUBSCRIPTION_ID } else { $env:AZURE_SUBSCRIPTION_ID }
if (-not $env:KEY_VAULT_ID -or -not $env:EVENT_SUBSCRIPTION_NAME -or -not $subscription) {
    Write-Host "Nothing provisioned by this environment (KEY_VAULT_ID / EVENT_SUBSCRIPTION_NAME unset): nothing to clean up."
    exit 0
}
if (-not (Invoke-Az @('account', 'show', '--output', 'none')).Ok) {
    Stop-Hook 1 "The Azure CLI is not signed in: run 'az login', then 'azd down' again (or azd env set SYNC_PREDOWN_SKIP true)."
}
$functionId = "$env:AZURE_FUNCTION_APP_ID/functions/keyvault_events"

$found = Find-SystemTopic $env:KEY_VAULT_ID $subscription
if (-not $found) {
    Write-Host "Key Vault $env:KEY_VAULT_NAME has no system topic: no event subscription to remove."
} else {
    $topicArgs = @('--system-topic-name', $found.Name, '--resource-group', $found.Group, '--subscription', $subscription)
    $existing = Invoke-Az (@('eventgrid', 'system-topic', 'event-subscription', 'show', '--name', $env:EVENT_SUBSCRIPTION_NAME) +
        $topicArgs + @('--query', 'destination.resourceId', '--output', 'tsv'))
    if ($existing.Ok) {
        if ($existing.Output.Trim().ToLowerInvariant() -eq $functionId.ToLowerInvariant()) {
            $deleted = Invoke-Az (@('eventgrid', 'system-topic', 'event-subscription', 'delete', '--name', $env:EVENT_SUBSCRIPTION_NAME) + $topicArgs + @('--yes'))
            if (-not $deleted.Ok) { Stop-Hook 1 "Deleting event subscription $env:EVENT_SUBSCRIPTION_NAME failed: $($deleted.Output)" }
            Write-Host "Deleted event subscription $env:EVENT_SUBSCRIPTION_NAME from $($found.Name)."
        } else {
            Write-Host "Event subscription $env:EVENT_SUBSCRIPTION_NAME on $($found.Name) delivers to $($existing.Output.Trim()): not this environment's, left alone."
        }
    }
    if ($found.Owner -and $found.Owner -ne 'None') {
        $remaining = Invoke-Az (@('eventgrid', 'system-topic', 'event-subscription', 'list') + $topicArgs + @('--query', 'length(@)', '--output', 'tsv'))
        if (-not $remaining.Ok) { Stop-Hook 1 "Listing the subscriptions of $($found.Name) failed: $($remaining.Output)" }
        if ($remaining.Output.Trim() -eq '0') {
            $deleted = Invoke-Az @('eventgrid', 'system-topic', 'delete', '--name', $found.Name, '--resource-group', $found.Group,
                '--subscription', $subscription, '--yes')
            if (-not $deleted.Ok) { Stop-Hook 1 "Deleting system topic $($found.Name) failed: $($deleted.Output)" }
            Write-Host "Deleted system topic $($found.Name) (created by provisioning-secret-sync, no subscriptions left)."
        } else {
            Write-Host "System topic $($found.Name) still has $($remaining.Output.Trim()) subscription(s): left in place."
        }
    } else {
        Write-Host "System topic $($found.Name) was not created by provisioning-secret-sync: left in place."
    }
}

if ($env:KEY_VAULT_ROLE_ASSIGNMENT_ID) {
    $deleted = Invoke-Az @('role', 'assignment', 'delete', '--ids', $env:KEY_VAULT_ROLE_ASSIGNMENT_ID, '--subscription', $subscription)
    if (-not $deleted.Ok) { Stop-Hook 1 "Deleting the Key Vault Secrets User role assignment failed: $($deleted.Output)" }
    Write-Host "Deleted the Key Vault Secrets User role assignment on $env:KEY_VAULT_NAME."
}
