"""All stand-ins the app talks to, wired together for one test session or a local sandbox.

One CA is shared by every HTTPS stand-in, the Key Vault challenge names the identity stand-in's tenant, and
:meth:`StandinStack.environ` gives exactly the environment the app (azure-identity and requests) needs to reach
them, so tests only patch the environment and never the HTTP clients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self

from .graph import GraphStandin
from .identity import ManagedIdentityStandin
from .keyvault import KeyVaultStandin
from .server import StandinServer
from .tls import TestCertificates

__all__ = ["DEFAULT_VAULT", "StandinStack"]

DEFAULT_VAULT = "standin-kv"


class StandinStack:
    """Managed identity (http), one or more Key Vaults (https) and Graph (https), started together."""

    def __init__(self) -> None:
        self.certificates = TestCertificates()
        self.identity = ManagedIdentityStandin()
        self.keyvault = self._new_vault(DEFAULT_VAULT)
        self.graph = GraphStandin(ssl_context=self.certificates.server_context())
        self.vaults: dict[str, KeyVaultStandin] = {DEFAULT_VAULT: self.keyvault}
        self._started = False

    def _new_vault(self, name: str) -> KeyVaultStandin:
        return KeyVaultStandin(
            ssl_context=self.certificates.server_context(), name=name, tenant_id=self.identity.tenant_id
        )

    def _servers(self) -> list[StandinServer]:
        return [self.identity, self.graph, *self.vaults.values()]

    def start(self) -> Self:
        """Start every stand-in (idempotent); the CA bundle file is written here."""
        _ = self.certificates.ca_bundle_path
        try:
            for server in self._servers():
                server.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop every stand-in, including vaults added with :meth:`add_vault`, and delete the CA bundle."""
        for server in self._servers():
            server.stop()
        self.certificates.cleanup()
        self._started = False

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_vault(self, name: str) -> KeyVaultStandin:
        """Start one more vault (its own port, so its own Key Vault challenge-cache entry in the SDK)."""
        if name in self.vaults:
            raise ValueError(f"vault {name!r} already exists")
        vault = self._new_vault(name)
        self.vaults[name] = vault
        if self._started:
            vault.start()
        return vault

    def environ(self) -> dict[str, str]:
        """Environment variables that point azure-identity and requests at the stand-ins."""
        return {
            "IDENTITY_ENDPOINT": self.identity.endpoint,
            "IDENTITY_HEADER": self.identity.identity_header,
            "REQUESTS_CA_BUNDLE": self.certificates.ca_bundle_path,
        }

    def reset(self) -> None:
        """Reset every stand-in (state, faults, logs, counters, latency); added vaults stay running."""
        for server in self._servers():
            server.reset()

    def set_latency(self, seconds: float) -> None:
        for server in self._servers():
            server.latency = seconds

    def total_connections(self) -> int:
        """TCP connections accepted by all stand-ins since start/reset."""
        return sum(server.connections_opened for server in self._servers())
