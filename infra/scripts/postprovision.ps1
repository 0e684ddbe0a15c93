# azd postprovision hook (azure.yaml). Runs after infra/main.bicep with its outputs in the environment.
#   GRAPH_PERMISSION_GRANT=bicep   the Graph app role was assigned by main.bicep; nothing to do
#   GRAPH_PERMISSION_GRANT=script  assign it now with grant-graph-permission.ps1 (az CLI, Privileged Role Administrator)
#   GRAPH_PERMISSION_GRANT=none    print the command an administrator runs later
# It also warns while sync-config.json still holds the example's placeholder ids.
$ErrorActionPreference = 'Stop'

Write-Host "Function App:             $env:AZURE_FUNCTION_APP_NAME"
Write-Host "Managed identity:         client id $env:MANAGED_IDENTITY_CLIENT_ID, object id $env:MANAGED_IDENTITY_PRINCIPAL_ID"
Write-Host "Key Vault Secrets User:   granted on vault $env:KEY_VAULT_NAME (resource group $env:KEY_VAULT_RESOURCE_GROUP)"

$graphRoot = if ($env:GRAPH_ROOT) { $env:GRAPH_ROOT } else { 'https://graph.microsoft.com' }
switch ($env:GRAPH_PERMISSION_GRANT) {
    'script' {
        Write-Host "Graph permission:         granting Synchronization.ReadWrite.All with infra/scripts/grant-graph-permission.ps1"
        & "$PSScriptRoot/grant-graph-permission.ps1" -PrincipalId $env:MANAGED_IDENTITY_PRINCIPAL_ID -GraphRoot $graphRoot
        if ($LASTEXITCODE) { exit $LASTEXITCODE }
    }
    'none' {
        Write-Host "Graph permission:         NOT granted (GRAPH_PERMISSION_GRANT=none). A Privileged Role Administrator runs:"
        Write-Host "  ./infra/scripts/grant-graph-permission.ps1 -PrincipalId $env:MANAGED_IDENTITY_PRINCIPAL_ID -GraphRoot $graphRoot"
    }
    default {
        Write-Host "Graph permission:         Synchronization.ReadWrite.All assigned by the Microsoft Graph Bicep extension"
    }
}

if ((Test-Path 'sync-config.json') -and (Select-String -Path 'sync-config.json' -Pattern '00000000-0000-0000-0000-0000000000' -Quiet)) {
    Write-Warning "sync-config.json still holds the example's placeholder ids: put your targets in it before 'azd deploy'."
}
