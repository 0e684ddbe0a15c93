# Shared by the PowerShell hook scripts (dot-sourced, not run). Needs PowerShell 7.2+ (azd's pwsh hooks):
# native commands' stderr is then plain output, and $LASTEXITCODE says whether az succeeded.
# Errors are written with [Console]::Error and an explicit exit code: under $ErrorActionPreference = 'Stop'
# Write-Error would throw and every failure would end with exit code 1.

function Stop-Hook([int]$Code, [string]$Message) {
    [Console]::Error.WriteLine($Message)
    exit $Code
}

# Runs az; returns @{ Ok; Output } with stdout and stderr as one text.
function Invoke-Az([string[]]$Arguments) {
    $output = (& az @Arguments 2>&1 | ForEach-Object { "$_" }) -join "`n"
    return @{ Ok = ($LASTEXITCODE -eq 0); Output = $output }
}

# The vault's Event Grid system topic (a vault has at most one): $null, or name, group, identity, owner.
function Find-SystemTopic([string]$VaultId, [string]$Subscription) {
    $fields = '[name, resourceGroup, source, identity.type, tags."provisioning-secret-sync"]'
    if ($env:KEY_VAULT_SYSTEM_TOPIC_NAME) {
        $group = if ($env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP) { $env:KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP } else { $env:KEY_VAULT_RESOURCE_GROUP }
        $result = Invoke-Az @('eventgrid', 'system-topic', 'show', '--name', $env:KEY_VAULT_SYSTEM_TOPIC_NAME,
            '--resource-group', $group, '--subscription', $Subscription, '--query', $fields, '--output', 'json')
        $rows = if ($result.Ok) { , @($result.Output | ConvertFrom-Json) } else { @() }
    } else {
        $result = Invoke-Az @('eventgrid', 'system-topic', 'list', '--subscription', $Subscription,
            '--query', "[].$fields", '--output', 'json')
        if (-not $result.Ok) {
            Stop-Hook 1 "Cannot list the Event Grid system topics of subscription ${Subscription}: name the vault's topic with azd env set KEY_VAULT_SYSTEM_TOPIC_NAME."
        }
        $rows = @($result.Output | ConvertFrom-Json)
    }
    foreach ($row in $rows) {
        if ($row -and $row[2] -and ($row[2].ToLowerInvariant() -eq $VaultId.ToLowerInvariant())) {
            return @{ Name = $row[0]; Group = $row[1]; Identity = "$($row[3])"; Owner = "$($row[4])" }
        }
    }
    return $null
}
