// Provisioning Secret Sync: everything `azd provision` creates (see docs/operations.md, "Deploy").
//
// Owned by this template (and deleted by `azd down` with the resource group): the resource group, the
// identity, storage (deployment package, ledger, Event Grid dead letters), monitoring and the Function App.
// Outside that group it writes exactly one thing: "Key Vault Secrets User" on the EXISTING vault, as a
// nested deployment into the vault's resource group. azd before 1.24.1 counted such a group as its own
// and deleted it on `azd down` (Azure/azure-dev PR #7698), so azure.yaml requires azd >= 1.24.1, and the
// predown hook removes that role assignment and the Event Grid subscription before the group goes.
//
// Not here, on purpose:
//   - the Microsoft Graph app role: the postprovision hook grants it (infra/graph/graph-permission.bicep or
//     the Graph REST API) once the new identity's service principal is visible, so this template never
//     needs the Graph Bicep extension from its registry (msgraph-bicep-types #193: the grant races the
//     identity created in the same deployment).
//   - the Event Grid subscription: Event Grid refuses an AzureFunction endpoint that is not deployed yet,
//     so the postdeploy hook deploys infra/events.bicep after the code.
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

@description('How the postprovision hook grants the Microsoft Graph app role: bicep (infra/graph/graph-permission.bicep, Microsoft Graph Bicep extension), script (Graph REST API with az rest), none (an administrator grants it later). Empty: bicep in the global cloud, script in national clouds.')
@allowed([
  ''
  'bicep'
  'script'
  'none'
])
param graphPermissionGrant string = ''

@description('Microsoft Graph application permission for the identity. Application.ReadWrite.OwnedBy only works on enterprise apps whose service principal the identity owns (see README, "Permissions").')
@allowed([
  'Synchronization.ReadWrite.All'
  'Application.ReadWrite.OwnedBy'
])
param graphAppRole string = 'Synchronization.ReadWrite.All'

@description('The cloud named in sync-config.json; picks the Graph root the hooks call and the default grant mode.')
@allowed([
  'global'
  'usgov'
  'usgovdod'
  'china'
])
param syncCloud string = 'global'

@description('Python version of the Flex Consumption app (3.13: the worker runtime pinned in requirements.txt).')
@allowed([
  '3.12'
  '3.13'
])
param pythonVersion string = '3.13'

@description('SYNC_CONFIG: the config document deployed with the code, relative to the app root.')
param syncConfigPath string = 'sync-config.json'

@description('SYNC_ALLOWED_VAULT_HOSTS: comma-separated private vault host names allowed in keyVaults[].url (optional).')
param allowedVaultHosts string = ''

@description('SYNC_RECONCILE_SCHEDULE: NCRONTAB schedule (6 fields, UTC) of the reconcile timer; default hourly.')
param reconcileSchedule string = '0 0 * * * *'

@description('SYNC_PAUSED: true stops every push (emergency pause); events are redelivered, the timer skips.')
@allowed([
  'true'
  'false'
])
param syncPaused string = 'false'

@description('Flex Consumption scale-out limit: the documented range is 40 to 1000.')
@minValue(40)
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
// One token per subscription, environment and region: every name below, and every name the hooks create
// outside the resource group, carries it, so two environments never share (or take over) a resource.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbreviations.functionApp}sync-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'
var ledgerContainerName = 'sync-ledger'
var deadLetterContainerName = 'eventgrid-deadletter'
var eventSubscriptionName = 'psync-${resourceToken}'
var vaultSubscriptionId = empty(keyVaultSubscriptionId) ? subscription().subscriptionId : keyVaultSubscriptionId
var graphRoots = {
  global: 'https://graph.microsoft.com'
  usgov: 'https://graph.microsoft.us'
  usgovdod: 'https://dod-graph.microsoft.us'
  china: 'https://microsoftgraph.chinacloudapi.cn'
}
// The Graph Bicep extension is documented for the public cloud only, so national clouds default to the script.
var graphPermissionMode = empty(graphPermissionGrant) ? ((syncCloud == 'global') ? 'bicep' : 'script') : graphPermissionGrant
var graphAppRoleIds = {
  'Synchronization.ReadWrite.All': '9b50c33d-700f-43b1-b2eb-87e89b703581'
  'Application.ReadWrite.OwnedBy': '18a4783c-866b-4cc7-a460-3d5e5662c884'
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? '${abbreviations.resourceGroup}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity-${resourceToken}'
  scope: rg
  params: {
    name: '${abbreviations.identity}sync-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage-${resourceToken}'
  scope: rg
  params: {
    name: '${abbreviations.storage}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    ledgerContainerName: ledgerContainerName
    deadLetterContainerName: deadLetterContainerName
    principalId: identity.outputs.principalId
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring-${resourceToken}'
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
  name: 'function-${resourceToken}'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbreviations.plan}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    ledgerContainerName: storage.outputs.ledgerContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    pythonVersion: pythonVersion
    syncConfigPath: syncConfigPath
    allowedVaultHosts: allowedVaultHosts
    reconcileSchedule: reconcileSchedule
    syncPaused: syncPaused
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

// The only deployment outside rg: its name carries the token so environments sharing the vault do not collide.
module keyVaultAccess 'app/keyvault-access.bicep' = {
  name: 'keyvault-access-${resourceToken}'
  scope: resourceGroup(vaultSubscriptionId, keyVaultResourceGroupName)
  params: {
    keyVaultName: keyVaultName
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
output KEY_VAULT_ID string = keyVaultAccess.outputs.vaultId
output KEY_VAULT_ROLE_ASSIGNMENT_ID string = keyVaultAccess.outputs.roleAssignmentId
output GRAPH_PERMISSION_MODE string = graphPermissionMode
output GRAPH_APP_ROLE_ID string = graphAppRoleIds[graphAppRole]
output GRAPH_ROOT string = graphRoots[syncCloud]
output RESOURCE_TOKEN string = resourceToken
output EVENT_SUBSCRIPTION_NAME string = eventSubscriptionName
output STORAGE_ACCOUNT_ID string = storage.outputs.id
output DEAD_LETTER_CONTAINER string = storage.outputs.deadLetterContainerName
output SYNC_LEDGER_CONTAINER string = storage.outputs.ledgerContainerName
