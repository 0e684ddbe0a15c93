"""What one worker process builds once and reuses: config, credential, clients, ledger.

Nothing here runs at import. The first invocation builds the credential and the clients; later
invocations reuse them, so tokens and the Key Vault challenge stay cached. Each cache is keyed by
what it was built from, so a changed setting builds anew instead of reusing a stale client.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clients.graph import GraphClient
from ..clients.identity import TokenProvider, managed_identity_provider
from ..clients.keyvault import SecretReader
from ..core.config import DEFAULT_CONCURRENCY, SyncConfig, load_config
from ..core.retry import RetrySettings
from ..ledger.base import Ledger
from ..ledger.blob import BlobLedger, storage_configured
from ..ledger.memory import MemoryLedger

CredentialFactory = Callable[[SyncConfig, RetrySettings], TokenProvider]
#: The credential for identity-based ``AzureWebJobsStorage`` (the ledger), from its ``__clientId`` setting.
StorageCredentialFactory = Callable[[str | None, RetrySettings], TokenProvider]


def managed_identity_for(config: SyncConfig, settings: RetrySettings) -> TokenProvider:
    return managed_identity_provider(config.managed_identity_client_id, settings)


@dataclass
class Services:
    """The clients one invocation uses."""

    config: SyncConfig
    credential: TokenProvider
    graph: GraphClient
    ledger: Ledger
    _readers: Mapping[str, SecretReader]

    def reader(self, vault_key: str) -> SecretReader:
        return self._readers[vault_key]


class Worker:
    """Process-wide state of the function app. ``reset`` forgets it all (a new worker process)."""

    def __init__(
        self,
        app_root: Path,
        environ: Mapping[str, str] | None = None,
        credential_factory: CredentialFactory = managed_identity_for,
        storage_credential_factory: StorageCredentialFactory = managed_identity_provider,
    ) -> None:
        self.app_root = app_root
        self.environ: Mapping[str, str] = environ if environ is not None else os.environ
        self._credential_factory = credential_factory
        self._storage_credential_factory = storage_credential_factory
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._config_key: tuple[Any, ...] | None = None
            self._config: SyncConfig | None = None
            self._cache: dict[tuple[Any, ...], Any] = {}
            self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        """The durable ledger when the app has storage (``AzureWebJobsStorage``), else the in-process one."""
        with self._lock:
            if self._ledger is None:
                if storage_configured(self.environ):
                    settings = self.settings()
                    self._ledger = BlobLedger.from_environ(
                        self.environ,
                        settings,
                        lambda client_id: self._storage_credential_factory(client_id, settings),
                        pool_size=DEFAULT_CONCURRENCY,
                    )
                else:
                    self._ledger = MemoryLedger()
            return self._ledger

    def config(self) -> SyncConfig:
        """The validated config; raises ``ConfigInvalid``. Re-read only when its source changed."""
        raw = self.environ.get("SYNC_CONFIG", "")
        key: tuple[Any, ...] = (
            raw,
            self.environ.get("SYNC_ALLOWED_VAULT_HOSTS", ""),
            self.environ.get("SYNC_MANAGED_IDENTITY_CLIENT_ID", ""),
            _mtime(self.app_root, raw),
        )
        with self._lock:
            if self._config is not None and self._config_key == key:
                return self._config
        config = load_config(self.environ, self.app_root)
        with self._lock:
            self._config_key, self._config = key, config
        return config

    def settings(self) -> RetrySettings:
        return RetrySettings.from_environ(self.environ)

    def services(self, config: SyncConfig) -> Services:
        settings = self.settings()
        identity_env = (self.environ.get("IDENTITY_ENDPOINT"), self.environ.get("IDENTITY_HEADER"))
        credential_key = ("credential", config.managed_identity_client_id, identity_env, settings)
        credential = self._cached(credential_key, lambda: self._credential_factory(config, settings))
        graph = self._cached(
            (
                "graph",
                config.graph_endpoint,
                config.graph_api_version,
                config.cloud.graph_scope,
                config.concurrency,
                settings,
                credential_key,
            ),
            lambda: GraphClient(
                config.graph_endpoint,
                config.graph_api_version,
                config.cloud.graph_scope,
                credential,
                settings,
                pool_size=config.concurrency,
            ),
        )
        readers = {
            key: self._cached(
                ("vault", vault.url, vault.name, config.concurrency, settings, credential_key),
                lambda vault=vault: SecretReader(vault, credential, settings, pool_size=config.concurrency),
            )
            for key, vault in config.key_vaults.items()
        }
        return Services(config=config, credential=credential, graph=graph, ledger=self.ledger, _readers=readers)

    def _cached(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]


def _mtime(app_root: Path, raw: str) -> float | None:
    if not raw or raw.lstrip().startswith("{"):
        return None
    path = Path(raw) if Path(raw).is_absolute() else app_root / raw
    try:
        return path.stat().st_mtime
    except OSError:
        return None
