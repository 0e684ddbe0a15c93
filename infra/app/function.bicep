// The Flex Consumption plan and Function App (Python), running as the user-assigned identity.
// Three functions (function_app.py): sync (HTTP), keyvault_events (Event Grid trigger) and reconcile (timer).
//
// App settings the code reads (see docs/operations.md, "App settings"):
//   SYNC_CONFIG                      the config document, deployed with the code (sync-config.json)
//   SYNC_MANAGED_IDENTITY_CLIENT_ID  the identity's client id, used when the document omits managedIdentityClientId
//   SYNC_LEDGER_CONTAINER            blob container of the per-target ledger in the AzureWebJobsStorage account
//   SYNC_RECONCILE_SCHEDULE          NCRONTAB schedule of the reconcile timer: the host cannot load it unset
//   SYNC_PAUSED                      emergency pause switch, 'false' unless set
//   SYNC_ALLOWED_VAULT_HOSTS         private vault host names (optional)
// Flex Consumption sets the runtime in functionAppConfig: FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION must not be app settings there.
param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

param storageAccountName string
param deploymentContainerName string
param ledgerContainerName string
param appInsightsName string
param pythonVersion string
param syncConfigPath string
param allowedVaultHosts string = ''
param reconcileSchedule string
param syncPaused string
param maximumInstanceCount int
param instanceMemoryMB int

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Identity-based host storage, blob service only: HTTP, Event Grid and timer triggers use no queues.
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
}

var syncSettings = {
  SYNC_CONFIG: syncConfigPath
  SYNC_MANAGED_IDENTITY_CLIENT_ID: identityClientId
  SYNC_LEDGER_CONTAINER: ledgerContainerName
  SYNC_RECONCILE_SCHEDULE: reconcileSchedule
  SYNC_PAUSED: syncPaused
}

var optionalSettings = empty(allowedVaultHosts) ? {} : { SYNC_ALLOWED_VAULT_HOSTS: allowedVaultHosts }

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: union(hostSettings, syncSettings, optionalSettings)
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
