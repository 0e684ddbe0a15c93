// Key Vault events -> the keyvault_events function (Event Grid trigger). Deployed by the azd
// postdeploy hook (infra/scripts/subscribe-keyvault-events.sh / .ps1) into the resource group of the
// system topic (default: the vault's), AFTER the code is deployed: Event Grid validates an
// AzureFunction endpoint when the subscription is created, and a function that does not exist yet fails.
//
// A vault can have only ONE system topic. If it already has one, pass its name (systemTopicName) and
// deploy into its resource group; this template then adds the subscription to it.
targetScope = 'resourceGroup'

@description('Name of the EXISTING Key Vault.')
param keyVaultName string

@description('Resource group of the Key Vault; default: this deployment\'s resource group.')
param keyVaultResourceGroupName string = resourceGroup().name

@description('Resource id of the Function App (output AZURE_FUNCTION_APP_ID of main.bicep).')
param functionAppId string

@description('Name of the function with the Event Grid trigger.')
param functionName string = 'keyvault_events'

@description('System topic of the vault: an existing one, or the one to create. Empty: evgt-<vault name>.')
param systemTopicName string = ''

@description('Name of the event subscription.')
param subscriptionName string = 'provisioning-secret-sync'

@description('Comma-separated Key Vault secret names to deliver events for (at most 25). Empty: every secret; the app ignores secrets no target uses.')
param secretNames string = ''

var topicName = empty(systemTopicName) ? 'evgt-${keyVaultName}' : systemTopicName
var names = empty(trim(secretNames)) ? [] : filter(map(split(secretNames, ','), n => trim(n)), n => !empty(n))
// Key Vault events carry the secret name as the subject; StringIn compares case-insensitively.
var advancedFilters = empty(names) ? [] : [
  {
    operatorType: 'StringIn'
    key: 'subject'
    values: names
  }
]

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
  scope: resourceGroup(keyVaultResourceGroupName)
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: topicName
  location: vault.location
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
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
  }
}

output systemTopicName string = systemTopic.name
output eventSubscriptionName string = eventSubscription.name
output secretFilter array = names
