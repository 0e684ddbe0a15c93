# Grant the Function App's managed identity its Microsoft Graph APPLICATION permission (an app role
# assignment on the Microsoft Graph service principal, appId 00000003-0000-0000-c000-000000000000).
# The PowerShell twin of grant-graph-permission.sh: waits for the new identity's service principal to
# replicate (msgraph-bicep-types #193), leaves an existing assignment alone (#161), assigns it with az rest
# (-Via rest) or by deploying infra/graph/graph-permission.bicep (-Via bicep), and retries replication errors.
#
# Usage: ./infra/scripts/grant-graph-permission.ps1 [-PrincipalId <object id>] [-GraphRoot <url>] [-AppRoleId <id>] [-Via rest|bicep]
#   PrincipalId  default $env:MANAGED_IDENTITY_PRINCIPAL_ID (an output of `azd provision`)
#   GraphRoot    https://graph.microsoft.com (default, or $env:GRAPH_ROOT), https://graph.microsoft.us,
#                https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn
#   AppRoleId    default $env:GRAPH_APP_ROLE_ID or Synchronization.ReadWrite.All (9b50c33d-700f-43b1-b2eb-87e89b703581);
#                Application.ReadWrite.OwnedBy is 18a4783c-866b-4cc7-a460-3d5e5662c884
#   Via          default $env:GRAPH_GRANT_VIA or rest; bicep also needs AZURE_RESOURCE_GROUP and RESOURCE_TOKEN
# Needs: the Azure CLI signed in (`az login`) as a Privileged Role Administrator or Global Administrator.
# Exit codes: 0 granted or already there, 1 failed, 2 wrong usage.
param(
    [string]$PrincipalId = $env:MANAGED_IDENTITY_PRINCIPAL_ID,
    [string]$GraphRoot = $(if ($env:GRAPH_ROOT) { $env:GRAPH_ROOT } else { 'https://graph.microsoft.com' }),
    [string]$AppRoleId = $(if ($env:GRAPH_APP_ROLE_ID) { $env:GRAPH_APP_ROLE_ID } else { '9b50c33d-700f-43b1-b2eb-87e89b703581' }),
    [string]$Via = $(if ($env:GRAPH_GRANT_VIA) { $env:GRAPH_GRANT_VIA } else { 'rest' })
)
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')
. "$PSScriptRoot/common.ps1"

$GraphRoot = "$GraphRoot".TrimEnd('/')
$graphAppId = '00000003-0000-0000-c000-000000000000'
$visibleAttempts = 24
$visibleWait = 5
$grantAttempts = 5
$grantWait = 15
$replicationErrors = @('Not a valid reference update', 'Request_ResourceNotFound',
    'does not exist or one of its queried reference-property objects are not present')

if ("$PrincipalId" -notmatch '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') {
    Stop-Hook 2 "usage: grant-graph-permission.ps1 -PrincipalId <the managed identity's object id>"
}
$roots = @('https://graph.microsoft.com', 'https://graph.microsoft.us', 'https://dod-graph.microsoft.us',
    'https://microsoftgraph.chinacloudapi.cn')
if ($roots -notcontains $GraphRoot) {
    Stop-Hook 2 "GraphRoot must be one of $($roots -join ', '), not '$GraphRoot'"
}
if (@('9b50c33d-700f-43b1-b2eb-87e89b703581', '18a4783c-866b-4cc7-a460-3d5e5662c884') -notcontains $AppRoleId) {
    Stop-Hook 2 "AppRoleId must be Synchronization.ReadWrite.All (9b50c33d-...) or Application.ReadWrite.OwnedBy (18a4783c-...)"
}
if (@('rest', 'bicep') -notcontains $Via) {
    Stop-Hook 2 "Via must be rest or bicep, not '$Via'"
}
if ($Via -eq 'bicep' -and (-not $env:AZURE_RESOURCE_GROUP -or -not $env:RESOURCE_TOKEN)) {
    Stop-Hook 2 "Via bicep needs AZURE_RESOURCE_GROUP and RESOURCE_TOKEN (outputs of azd provision)"
}

if (-not (Invoke-Az @('account', 'show', '--output', 'none')).Ok) {
    Stop-Hook 1 "The Azure CLI is not signed in: run 'az login' (and 'az cloud set' for a national cloud), then 'azd hooks run postprovision'."
}

# 1. The new identity's service principal must be visible before anything can be assigned to it.
for ($attempt = 1; ; $attempt++) {
    $result = Invoke-Az @('rest', '--method', 'get', '--resource', $GraphRoot,
        '--url', "$GraphRoot/v1.0/servicePrincipals/$PrincipalId`?`$select=id", '--output', 'none')
    if ($result.Ok) { break }
    if ($result.Output -notmatch 'Request_ResourceNotFound|does not exist') {
        Stop-Hook 1 "Cannot read service principal $PrincipalId in Microsoft Graph: $($result.Output)"
    }
    if ($attempt -ge $visibleAttempts) {
        Stop-Hook 1 "Service principal $PrincipalId is still not visible in Microsoft Graph after $attempt attempts: re-run 'azd hooks run postprovision' in a few minutes."
    }
    Write-Host "waiting for service principal $PrincipalId to replicate ($attempt/$visibleAttempts) ..."
    Start-Sleep -Seconds $visibleWait
}

# 2. Already assigned: nothing to do. Filtering happens here, not in a --query: on Windows az is a .cmd
# script and cmd would read '&&'.
$lookup = Invoke-Az @('rest', '--method', 'get', '--resource', $GraphRoot,
    '--url', "$GraphRoot/v1.0/servicePrincipals(appId='$graphAppId')")
if (-not $lookup.Ok) { Stop-Hook 1 "Cannot read the Microsoft Graph service principal: $($lookup.Output)" }
$graphSp = ($lookup.Output | ConvertFrom-Json).id
$listing = Invoke-Az @('rest', '--method', 'get', '--resource', $GraphRoot,
    '--url', "$GraphRoot/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments")
if (-not $listing.Ok) { Stop-Hook 1 "Cannot list the app role assignments of ${PrincipalId}: $($listing.Output)" }
$existing = @(($listing.Output | ConvertFrom-Json).value | Where-Object { $_.appRoleId -eq $AppRoleId -and $_.resourceId -eq $graphSp })
if ($existing.Count -gt 0) {
    Write-Host "Microsoft Graph app role $AppRoleId is already assigned to $PrincipalId."
    exit 0
}

# 3. Assign, retrying only the replication errors a new identity causes.
$body = New-TemporaryFile
try {
    @{ principalId = $PrincipalId; resourceId = $graphSp; appRoleId = $AppRoleId } |
        ConvertTo-Json | Set-Content -Path $body -Encoding utf8
    for ($attempt = 1; ; $attempt++) {
        if ($Via -eq 'bicep') {
            $result = Invoke-Az @('deployment', 'group', 'create', '--resource-group', $env:AZURE_RESOURCE_GROUP,
                '--name', "graph-permission-$env:RESOURCE_TOKEN", '--template-file', 'infra/graph/graph-permission.bicep',
                '--output', 'none', '--parameters', "principalId=$PrincipalId", "appRoleId=$AppRoleId")
        } else {
            $result = Invoke-Az @('rest', '--method', 'post', '--resource', $GraphRoot,
                '--url', "$GraphRoot/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments",
                '--headers', 'Content-Type=application/json', '--body', "@$body", '--output', 'none')
        }
        if ($result.Ok) { break }
        $replicating = @($replicationErrors | Where-Object { $result.Output.Contains($_) }).Count -gt 0
        if (-not $replicating) {
            Stop-Hook 1 "Assigning Microsoft Graph app role $AppRoleId to $PrincipalId failed: $($result.Output)"
        }
        if ($attempt -ge $grantAttempts) {
            Stop-Hook 1 "Microsoft Graph still rejects the new identity after $attempt attempts (replication): re-run 'azd hooks run postprovision'."
        }
        Write-Host "Microsoft Graph has not replicated $PrincipalId yet; retrying ($attempt/$grantAttempts) ..."
        Start-Sleep -Seconds $grantWait
    }
} finally {
    Remove-Item $body -ErrorAction SilentlyContinue
}
Write-Host "Assigned Microsoft Graph app role $AppRoleId to $PrincipalId (via $Via)."
Write-Host "New tokens carry it; a running app picks it up when its cached token expires (up to 24 h) or on restart."
