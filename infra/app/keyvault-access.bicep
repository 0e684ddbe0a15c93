// "Key Vault Secrets User" for the Function App identity on the EXISTING vault (RBAC permission model).
// Deployed into the vault's resource group; the deploying user needs permission to assign roles there
// (Owner, User Access Administrator or Role Based Access Control Administrator). The predown hook deletes
// this assignment (output roleAssignmentId) before `azd down` deletes the identity.
param keyVaultName string

@description('Principal (object) id of the Function App identity.')
param principalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output vaultId string = vault.id
output vaultUri string = vault.properties.vaultUri
output roleAssignmentId string = secretsUser.id
