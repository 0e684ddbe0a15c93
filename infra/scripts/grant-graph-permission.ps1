# Grant the Function App's managed identity the Microsoft Graph APPLICATION permission
# Synchronization.ReadWrite.All (app role 9b50c33d-700f-43b1-b2eb-87e89b703581) with `az rest`:
# an app role assignment on the Microsoft Graph service principal (appId 00000003-0000-0000-c000-000000000000).
# The portal cannot grant app roles to a managed identity.
#
# For tenants or clouds that cannot use the Microsoft Graph Bicep extension (azd env set
# GRAPH_PERMISSION_GRANT script|none). Idempotent: an existing assignment is left alone.
#
# Usage: ./infra/scripts/grant-graph-permission.ps1 [-PrincipalId <object id>] [-GraphRoot <url>]
#   PrincipalId  default $env:MANAGED_IDENTITY_PRINCIPAL_ID (an output of `azd provision`)
#   GraphRoot    https://graph.microsoft.com (default, or $env:GRAPH_ROOT), https://graph.microsoft.us,
#                https://dod-graph.microsoft.us, https://microsoftgraph.chinacloudapi.cn
# Needs: the Azure CLI signed in to the tenant (`az login`; `az cloud set` first for a national cloud) as a
# Privileged Role Administrator or Global Administrator.
param(
    [string]$PrincipalId = $env:MANAGED_IDENTITY_PRINCIPAL_ID,
    [string]$GraphRoot = $(if ($env:GRAPH_ROOT) { $env:GRAPH_ROOT } else { 'https://graph.microsoft.com' }),
    [string]$AppRoleId = '9b50c33d-700f-43b1-b2eb-87e89b703581'
)
$ErrorActionPreference = 'Stop'
$GraphRoot = $GraphRoot.TrimEnd('/')
$graphAppId = '00000003-0000-0000-c000-000000000000'

if ($PrincipalId -notmatch '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') {
    Write-Error "usage: grant-graph-permission.ps1 -PrincipalId <the managed identity's object id>"
    exit 2
}
$roots = @('https://graph.microsoft.com', 'https://graph.microsoft.us', 'https://dod-graph.microsoft.us',
    'https://microsoftgraph.chinacloudapi.cn')
if ($roots -notcontains $GraphRoot) {
    Write-Error "GraphRoot must be one of $($roots -join ', ')"
    exit 2
}

function Invoke-Graph([string[]]$Arguments) {
    $output = & az rest --resource $GraphRoot @Arguments
    if ($LASTEXITCODE -ne 0) { throw "az rest failed ($LASTEXITCODE)" }
    return $output
}

# Filtering happens here, not in a --query: on Windows az is a .cmd script and cmd would read '&&'.
$graphSp = (Invoke-Graph @('--method', 'get', '--url', "$GraphRoot/v1.0/servicePrincipals(appId='$graphAppId')") |
    Out-String | ConvertFrom-Json).id
$assignments = (Invoke-Graph @('--method', 'get', '--url',
    "$GraphRoot/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments") | Out-String | ConvertFrom-Json).value
$existing = @($assignments | Where-Object { $_.appRoleId -eq $AppRoleId -and $_.resourceId -eq $graphSp })
if ($existing.Count -gt 0) {
    Write-Host "Microsoft Graph app role $AppRoleId is already assigned to $PrincipalId."
    exit 0
}
$body = New-TemporaryFile
try {
    @{ principalId = $PrincipalId; resourceId = $graphSp; appRoleId = $AppRoleId } |
        ConvertTo-Json | Set-Content -Path $body -Encoding utf8
    Invoke-Graph @('--method', 'post', '--url', "$GraphRoot/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments",
        '--headers', 'Content-Type=application/json', '--body', "@$body", '--output', 'none') | Out-Null
} finally {
    Remove-Item $body -ErrorAction SilentlyContinue
}
Write-Host "Assigned Microsoft Graph app role $AppRoleId (Synchronization.ReadWrite.All) to $PrincipalId."
Write-Host "New tokens carry it; a running app picks it up when its cached token expires (up to 24 h) or on restart."
