// Microsoft Graph application permission for the Function App identity, as an app role assignment on the
// Microsoft Graph service principal (the portal cannot grant app roles to a managed identity).
//
// A template of its own, deployed by the postprovision hook (infra/scripts/grant-graph-permission.sh / .ps1,
// GRAPH_PERMISSION_MODE=bicep) and never referenced from main.bicep: Bicep compiles a module even behind a
// false condition, so main.bicep would otherwise need the extension's registry in every mode. The extension
// alias lives in the bicepconfig.json next to this file, which only this directory sees.
// The hook waits until the new identity's service principal is readable in Graph, skips the deployment when
// the assignment already exists (redeploying it conflicts: msgraph-bicep-types #161) and retries the
// replication errors of msgraph-bicep-types #193.
//
// The deploying user needs AppRoleAssignment.ReadWrite.All + Application.Read.All, in practice the
// Privileged Role Administrator (or Global Administrator) directory role. Bicep >= 0.36.1.
targetScope = 'resourceGroup'

extension microsoftGraphV1

@description('Principal (object) id of the Function App identity.')
param principalId string

@description('App role id on Microsoft Graph: Synchronization.ReadWrite.All or Application.ReadWrite.OwnedBy.')
@allowed([
  '9b50c33d-700f-43b1-b2eb-87e89b703581'
  '18a4783c-866b-4cc7-a460-3d5e5662c884'
])
param appRoleId string

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource appRoleAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: appRoleId
  principalId: principalId
  resourceId: microsoftGraph.id
}

output appRoleAssignmentId string = appRoleAssignment.id
