# azd postprovision hook (azure.yaml), the PowerShell twin of postprovision.sh. Runs after infra/main.bicep
# with its outputs in the environment.
#   GRAPH_PERMISSION_MODE=bicep   grant the Graph app role by deploying infra/graph/graph-permission.bicep
#   GRAPH_PERMISSION_MODE=script  grant it with the Graph REST API (az rest)
#   GRAPH_PERMISSION_MODE=none    print the command an administrator runs later
# Both grant paths wait for the new identity to replicate and retry (grant-graph-permission.ps1).
# It also warns while sync-config.json still holds the example's placeholder ids.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')
. "$PSScriptRoot/common.ps1"

$graphRoot = if ($env:GRAPH_ROOT) { $env:GRAPH_ROOT } else { 'https://graph.microsoft.com' }
$role = if ($env:GRAPH_APP_ROLE_ID) { $env:GRAPH_APP_ROLE_ID } else { '9b50c33d-700f-43b1-b2eb-87e89b703581' }
$mode = if ($env:GRAPH_PERMISSION_MODE) { $env:GRAPH_PERMISSION_MODE } else { 'bicep' }

Write-Host "Function App:             $env:AZURE_FUNCTION_APP_NAME"
Write-Host "Managed identity:         client id $env:MANAGED_IDENTITY_CLIENT_ID, object id $env:MANAGED_IDENTITY_PRINCIPAL_ID"
Write-Host "Key Vault Secrets User:   granted on vault $env:KEY_VAULT_NAME (resource group $env:KEY_VAULT_RESOURCE_GROUP)"

switch ($mode) {
    'bicep' {
        Write-Host "Graph permission:         granting app role $role (infra/graph/graph-permission.bicep)"
        & "$PSScriptRoot/grant-graph-permission.ps1" -PrincipalId $env:MANAGED_IDENTITY_PRINCIPAL_ID -GraphRoot $graphRoot -AppRoleId $role -Via bicep
        if ($LASTEXITCODE) { exit $LASTEXITCODE }
    }
    'script' {
        Write-Host "Graph permission:         granting app role $role (Graph REST API)"
        & "$PSScriptRoot/grant-graph-permission.ps1" -PrincipalId $env:MANAGED_IDENTITY_PRINCIPAL_ID -GraphRoot $graphRoot -AppRoleId $role -Via rest
        if ($LASTEXITCODE) { exit $LASTEXITCODE }
    }
    'none' {
        Write-Host "Graph permission:         NOT granted (GRAPH_PERMISSION_GRANT=none). A Privileged Role Administrator runs:"
        Write-Host "  ./infra/scripts/grant-graph-permission.ps1 -PrincipalId $env:MANAGED_IDENTITY_PRINCIPAL_ID -GraphRoot $graphRoot -AppRoleId $role"
    }
    default {
        Stop-Hook 2 "GRAPH_PERMISSION_MODE must be bicep, script or none, not '$mode'"
    }
}

if ((Test-Path 'sync-config.json') -and (Select-String -Path 'sync-config.json' -Pattern '00000000-0000-0000-0000-0000000000' -Quiet)) {
    Write-Warning "sync-config.json still holds the example's placeholder ids: put your targets in it before 'azd deploy'."
}
