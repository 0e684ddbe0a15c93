"""Provisioning Secret Sync: the logic behind ``function_app.py`` and the operator CLI.

Layers, lowest first; a package imports only from its own layer or those below it
(``tests/test_layers.py`` checks it):

- ``core``     config, errors, results, retry, redaction, structured logs
- ``clients``  managed identity, Key Vault and Graph
- ``ledger``   the per-target push ledger
- ``sync``     one target's pipeline, the fan-out, the per-process services
- ``triggers`` HTTP bodies, Key Vault events, selection, the service entry points
- ``cli``      ``python -m shared``: one module per command
"""
