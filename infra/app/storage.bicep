// Storage for the Functions host (AzureWebJobsStorage), the Flex Consumption deployment package, the
// per-target sync ledger and Event Grid's dead letters, reached only with managed identities: shared keys
// are disabled.
param name string
param location string
param tags object = {}

@description('Blob container the Flex Consumption app deploys its package from.')
param deploymentContainerName string

@description('Blob container of the per-target sync ledger (app setting SYNC_LEDGER_CONTAINER).')
param ledgerContainerName string

@description('Blob container Event Grid writes undeliverable Key Vault events to (infra/events.bicep).')
param deadLetterContainerName string

@description('Principal (object) id of the Function App identity.')
param principalId string

// Storage Blob Data Owner: the documented role for identity-based AzureWebJobsStorage ("host only", and
// "Timer trigger: no change from default requirement" - the timer's singleton lock is a blob lease).
// HTTP and Event Grid triggers add nothing, so there is no queue or table role.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Created here so the app never needs to create containers for its own data; the host role covers it.
resource ledgerContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: ledgerContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Host storage, deployment package and ledger: all blobs in this account.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output ledgerContainerName string = ledgerContainer.name
output deadLetterContainerName string = deadLetterContainer.name
