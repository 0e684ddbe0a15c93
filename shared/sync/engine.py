"""Fan-out: the selected targets, concurrently up to ``concurrency``, with each distinct Key Vault
secret read once and all of them read at the same time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from ..clients.keyvault import SecretResolver
from ..core.config import KeyVaultSource, SecretRef, Target
from ..core.results import TargetResult
from .pipeline import Invocation, TargetPipeline

if TYPE_CHECKING:
    from .runtime import Services

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class SyncRun:
    """One invocation's shared machinery: Key Vault reads (each secret once, all at once), the
    target pipeline, and the pool the targets run on. Used with ``with``; the reconcile run and
    ``run_sync`` both build on it."""

    def __init__(self, services: Services, targets: list[Target], invocation: Invocation) -> None:
        self.services = services
        self.invocation = invocation
        self._names: dict[SecretRef, str] = {}
        for target in targets:
            for source in target.secrets.values():
                if isinstance(source, KeyVaultSource):
                    self._names.setdefault(source.ref, source.secret_name)
        concurrency = services.config.concurrency
        self._read_pool = ThreadPoolExecutor(
            max_workers=max(1, min(concurrency, len(self._names))), thread_name_prefix="kv-read"
        )
        workers = max(1, min(concurrency, len(targets)))
        self._sync_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync")
        self.resolver = SecretResolver(
            services.reader, self._names, invocation.deadline, invocation.redactor, self._read_pool, now=invocation.now
        )
        #: Per target at most two Graph reads and the lock run ahead of the chain (see ``TargetPipeline._sync``).
        self._side_pool = ThreadPoolExecutor(max_workers=3 * workers, thread_name_prefix="sync-side")
        self.pipeline = TargetPipeline(
            services.config, services.graph, self.resolver, services.ledger, invocation, self._side_pool
        )

    def __enter__(self) -> SyncRun:
        self.resolver.prefetch(self._names)  # first-use order: the first targets' secrets are read first
        return self

    def __exit__(self, *exc: object) -> None:
        self._sync_pool.shutdown(wait=True)
        self._side_pool.shutdown(wait=True)  # dropped speculative reads end here, inside the invocation
        self._read_pool.shutdown(wait=True)

    def map(self, work: Callable[[Item], Outcome], items: Iterable[Item]) -> list[Outcome]:
        """``work`` over ``items`` on the target pool; results keep the input order."""
        return list(self._sync_pool.map(work, items))


def run_sync(services: Services, targets: list[Target], invocation: Invocation) -> list[TargetResult]:
    """Sync ``targets``; one failing target never stops the others. Results keep the input order."""
    if not targets:
        return []
    with SyncRun(services, targets, invocation) as run:
        return run.map(run.pipeline.run, targets)
