"""Layer 2: the Azure clients (managed identity, Key Vault, Graph) over azure-identity,
azure-keyvault-secrets and requests."""
