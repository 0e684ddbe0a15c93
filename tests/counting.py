"""Counting what the app sends: requests per hop, token issuances, Key Vault challenges and new
connections on the stand-ins, as a snapshot; subtract two snapshots for what one invocation did.

azure-keyvault keeps answered challenges per vault host for the whole process, so a test about a
first challenge uses a vault of its own (``fresh_vault``: a new stand-in port, a host this process
has never seen).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from standins import KeyVaultStandin, StandinStack
from tests.harness import Harness

GRAPH_RESOURCE = "https://graph.microsoft.com"
VAULT_RESOURCE = "https://vault.azure.net"


@dataclass(frozen=True)
class Tally:
    hops: Counter[tuple[str, str]]  # (service, hop); a vault's service name is the vault's name
    tokens: Counter[str]  # issuances per resource, and "total"
    challenges: Counter[str]  # per vault name
    connections: Counter[str]  # per service

    def __sub__(self, earlier: Tally) -> Tally:
        return Tally(
            self.hops - earlier.hops,
            self.tokens - earlier.tokens,
            self.challenges - earlier.challenges,
            self.connections - earlier.connections,
        )

    def service(self, name: str) -> Counter[str]:
        """Requests per hop of one service."""
        return Counter({hop: n for (service, hop), n in self.hops.items() if service == name})


def tally(stack: StandinStack) -> Tally:
    servers = {"identity": stack.identity, "graph": stack.graph, **stack.vaults}
    hops: Counter[tuple[str, str]] = Counter()
    for name, server in servers.items():
        hops.update((name, record.hop) for record in server.requests)
    return Tally(
        hops=hops,
        tokens=Counter({r: stack.identity.token_requests(r) for r in (GRAPH_RESOURCE, VAULT_RESOURCE)})
        + Counter({"total": stack.identity.token_requests()}),
        challenges=Counter({name: vault.challenges_issued for name, vault in stack.vaults.items()}),
        connections=Counter({name: server.connections_opened for name, server in servers.items()}),
    )


def fresh_vault(harness: Harness) -> tuple[str, KeyVaultStandin]:
    name = f"perf-{uuid.uuid4().hex[:8]}"
    return name, harness.stack.add_vault(name)
