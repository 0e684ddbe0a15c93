// Provisioning Secret Sync: everything `azd provision` creates (see docs/operations.md).
//
// The Key Vault already exists (keyVaultName / keyVaultResourceGroupName): this template only grants
// the app's identity "Key Vault Secrets User" on it. The Event Grid subscription to the vault is NOT
// created here: Event Grid refuses a subscription to a function that is not deployed yet, so the
// azd postdeploy hook deploys infra/events.bicep once the code is in place.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; used to name and tag every resource.')
param environmentName string

@minLength(1)
@description('Region of the Function App and its resources (a region that offers Flex Consumption).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group to create; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Name of the EXISTING Key Vault that holds the provisioning secrets (RBAC permission model).')
param keyVaultName string

@description('Resource group of that Key Vault.')
param keyVaultResourceGroupName string

@description('Subscription of that Key Vault; empty: the deployment subscription.')
param keyVaultSubscriptionId string = ''

@description('How the Microsoft Graph app role Synchronization.ReadWrite.All reaches the identity: bicep (Microsoft Graph Bicep extension, needs a Privileged Role Administrator deploying), script (the postprovision hook runs infra/scripts/grant-graph-permission.sh), none (an administrator grants it later).')
@allowed([
  'bicep'
  'script'
  'none'
])
param graphPermissionGrant string = 'bicep'

@description('The cloud named in sync-config.json; picks the Graph root the grant script calls.')
@allowed([
  'global'
  'usgov'
  'usgovdod'
  'china'
])
param syncCloud string = 'global'

@description('Python version of the Flex Consumption app.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('SYNC_CONFIG: the config document deployed with the code, relative to the app root.')
param syncConfigPath string = 'sync-config.json'

@description('SYNC_ALLOWED_VAULT_HOSTS: comma-separated private vault host names allowed in keyVaults[].url (optional).')
param allowedVaultHosts string = ''

@description('Flex Consumption scale-out limit.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance size.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var abbreviations = {
  resourceGroup: 'rg-'
  functionApp: 'func-'
  plan: 'plan-'
  identity: 'id-'
  storage: 'st'
  logAnalytics: 'log-'
  appInsights: 'appi-'
}
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbreviations.functionApp}sync-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var vaultSubscriptionId = empty(keyVaultSubscriptionId) ? subscription().subscriptionId : keyVaultSubscriptionId
var graphRoots = {
  global: 'https://graph.microsoft.com'
  usgov: 'https://graph.microsoft.us'
  usgovdod: 'https://dod-graph.microsoft.us'
  china: 'https://microsoftgraph.chinacloudapi.cn'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbreviations.resourceGroup}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbreviations.identity}sync-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbreviations.storage}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    principalId: identity.outputs.principalId
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbreviations.logAnalytics}${resourceToken}'
    appInsightsName: '${abbreviations.appInsights}${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbreviations.plan}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    pythonVersion: pythonVersion
    syncConfigPath: syncConfigPath
    allowedVaultHosts: allowedVaultHosts
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module keyVaultAccess 'app/keyvault-access.bicep' = {
  name: 'keyvault-access'
  scope: resourceGroup(vaultSubscriptionId, keyVaultResourceGroupName)
  params: {
    keyVaultName: keyVaultName
    principalId: identity.outputs.principalId
  }
}

module graphPermission 'app/graph-permission.bicep' = if (graphPermissionGrant == 'bicep') {
  name: 'graph-permission'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
  }
}

// Outputs land in the azd environment (.azure/<env>/.env) where the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_ID string = functionApp.outputs.id
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output KEY_VAULT_NAME string = keyVaultName
output KEY_VAULT_RESOURCE_GROUP string = keyVaultResourceGroupName
output KEY_VAULT_SUBSCRIPTION_ID string = vaultSubscriptionId
output GRAPH_PERMISSION_GRANT string = graphPermissionGrant
output GRAPH_ROOT string = graphRoots[syncCloud]
