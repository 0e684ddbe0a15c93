"""Layer 5: the triggers' adapters: HTTP bodies, Key Vault events, what they select, and the service entry points."""
