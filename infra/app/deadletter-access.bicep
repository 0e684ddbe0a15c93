// Storage Blob Data Contributor for the Event Grid system topic's managed identity on the dead-letter
// container only (not the account): Event Grid writes undeliverable events there with
// deadLetterWithResourceIdentity, because the account accepts no shared keys.
// Deployed by infra/events.bicep into the app's resource group, so `azd down` removes it with the group.
param storageAccountName string
param containerName string

@description('Principal (object) id of the system topic\'s system-assigned identity.')
param principalId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, storageBlobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output roleAssignmentId string = writer.id
