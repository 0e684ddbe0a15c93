"""Fan-out: the selected targets, concurrently up to ``concurrency``, with each distinct Key Vault
secret read once and all of them read at the same time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..clients.keyvault import SecretResolver
from ..core.config import KeyVaultSource, SecretRef, Target
from ..core.results import TargetResult
from .pipeline import Invocation, TargetPipeline

if TYPE_CHECKING:
    from .runtime import Services


def run_sync(services: Services, targets: list[Target], invocation: Invocation) -> list[TargetResult]:
    """Sync ``targets``; one failing target never stops the others. Results keep the input order."""
    if not targets:
        return []
    config = services.config
    names: dict[SecretRef, str] = {}
    for target in targets:
        for source in target.secrets.values():
            if isinstance(source, KeyVaultSource):
                names.setdefault(source.ref, source.secret_name)
    workers = min(config.concurrency, len(targets))
    readers = max(1, min(config.concurrency, len(names)))
    with (
        ThreadPoolExecutor(max_workers=readers, thread_name_prefix="kv-read") as read_pool,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync") as sync_pool,
    ):
        resolver = SecretResolver(
            services.reader, names, invocation.deadline, invocation.redactor, read_pool, now=invocation.now
        )
        resolver.prefetch(names)  # first-use order: the first targets' secrets are read first
        pipeline = TargetPipeline(config, services.graph, resolver, services.ledger, invocation)
        return list(sync_pool.map(pipeline.run, targets))
