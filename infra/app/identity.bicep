// The user-assigned managed identity the Function App runs as: storage, Application Insights,
// Key Vault and Microsoft Graph are all reached with it (no keys, no connection strings).
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
