// Microsoft Graph application permission Synchronization.ReadWrite.All for the Function App identity,
// as an app role assignment on the Microsoft Graph service principal (the portal cannot grant app
// roles to a managed identity). Uses the Microsoft Graph Bicep extension (alias in ../bicepconfig.json,
// Bicep >= 0.36.1). The deploying user needs AppRoleAssignment.ReadWrite.All + Application.Read.All,
// in practice the Privileged Role Administrator (or Global Administrator) directory role.
// Tenants or clouds that cannot use the extension: graphPermissionGrant=script or none, and
// infra/scripts/grant-graph-permission.sh / .ps1.
extension microsoftGraphV1

@description('Principal (object) id of the Function App identity.')
param principalId string

@description('App role id of Synchronization.ReadWrite.All on Microsoft Graph.')
param appRoleId string = '9b50c33d-700f-43b1-b2eb-87e89b703581'

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource synchronizationReadWriteAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: appRoleId
  principalId: principalId
  resourceId: microsoftGraph.id
}

output appRoleAssignmentId string = synchronizationReadWriteAll.id
