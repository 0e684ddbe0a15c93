// Key Vault events -> the keyvault_events function (Event Grid trigger). Deployed by the azd postdeploy
// hook (infra/scripts/subscribe-keyvault-events.sh / .ps1) into the resource group of the vault's system
// topic, AFTER the code is deployed: Event Grid validates an AzureFunction endpoint when the subscription is
// created, and a function that does not exist yet fails.
//
// A vault has at most ONE system topic, shared by everything that subscribes to it. The hook looks it up:
// if it exists it is only referenced (`existing`, never re-declared, so its identity and tags stay as they
// are); if not, this template creates it (createSystemTopic) with a system-assigned identity and the tag
// `provisioning-secret-sync`, which is how the predown hook knows it may delete an empty topic.
// The subscription's name is per environment (output EVENT_SUBSCRIPTION_NAME of main.bicep), so environments
// sharing the vault each get their own subscription; the hook refuses to touch one that points elsewhere.
//
// Undeliverable events (30 attempts or 24 hours) are dead-lettered to a blob container in the app's storage
// account, written with the topic's managed identity (Storage Blob Data Contributor on that container only).
targetScope = 'resourceGroup'

@description('Name of the EXISTING Key Vault.')
param keyVaultName string

@description('Resource group of the Key Vault; default: this deployment\'s resource group.')
param keyVaultResourceGroupName string = resourceGroup().name

@description('Resource id of the Function App (output AZURE_FUNCTION_APP_ID of main.bicep).')
param functionAppId string

@description('Name of the function with the Event Grid trigger.')
param functionName string = 'keyvault_events'

@description('The vault\'s system topic in this resource group: the existing one, or the one to create.')
param systemTopicName string

@description('true: create the system topic (the vault has none yet); false: it exists and is only referenced.')
param createSystemTopic bool

@description('Event subscription name, unique per environment (output EVENT_SUBSCRIPTION_NAME of main.bicep).')
@minLength(3)
@maxLength(64)
param subscriptionName string

@description('Value of the provisioning-secret-sync tag on a topic this template creates (output RESOURCE_TOKEN).')
param ownerToken string

@description('Comma-separated Key Vault secret names to deliver events for (at most 25). Empty: every secret; the app ignores secrets no target uses.')
param secretNames string = ''

@description('Resource id of the app\'s storage account (output STORAGE_ACCOUNT_ID of main.bicep).')
param deadLetterStorageAccountId string

@description('Blob container for dead-lettered events (output DEAD_LETTER_CONTAINER of main.bicep).')
param deadLetterContainerName string

@description('false when the existing topic has no system-assigned identity to write dead letters with.')
param enableDeadLetter bool = true

var names = empty(trim(secretNames)) ? [] : filter(map(split(secretNames, ','), n => trim(n)), n => !empty(n))
// Key Vault events carry the secret name as the subject; StringIn compares case-insensitively.
var advancedFilters = empty(names) ? [] : [
  {
    operatorType: 'StringIn'
    key: 'subject'
    values: names
  }
]
var storageIdParts = split(deadLetterStorageAccountId, '/')

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
  scope: resourceGroup(keyVaultResourceGroupName)
}

resource createdTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (createSystemTopic) {
  name: systemTopicName
  location: vault.location
  tags: {
    'provisioning-secret-sync': ownerToken
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

// Whether just created or shared with others, the subscription hangs off the topic as it is.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

module deadLetterAccess 'app/deadletter-access.bicep' = if (enableDeadLetter) {
  name: 'deadletter-access-${ownerToken}'
  scope: resourceGroup(storageIdParts[2], storageIdParts[4])
  dependsOn: [
    createdTopic
  ]
  params: {
    storageAccountName: last(storageIdParts)
    containerName: deadLetterContainerName
    principalId: systemTopic.identity.principalId
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  dependsOn: [
    createdTopic
    deadLetterAccess
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
      isSubjectCaseSensitive: false
      advancedFilters: advancedFilters
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: enableDeadLetter ? {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    } : null
  }
}

output systemTopicName string = systemTopic.name
output eventSubscriptionName string = eventSubscription.name
output deadLettering bool = enableDeadLetter
output secretFilter array = names
