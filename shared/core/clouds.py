"""National clouds: Graph root, token scope, Key Vault DNS suffix and which sync calls exist."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cloud:
    name: str
    graph_root: str
    vault_suffix: str
    #: Microsoft documents validateCredentials and start as not offered in 21Vianet.
    supports_validation: bool = True
    supports_job_start: bool = True

    @property
    def graph_scope(self) -> str:
        """The token scope stays the cloud's Graph resource even when ``graph.endpoint`` is overridden."""
        return f"{self.graph_root}/.default"

    @property
    def vault_resource(self) -> str:
        return f"https://{self.vault_suffix}"


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "https://graph.microsoft.com", "vault.azure.net"),
    "usgov": Cloud("usgov", "https://graph.microsoft.us", "vault.usgovcloudapi.net"),
    "usgovdod": Cloud("usgovdod", "https://dod-graph.microsoft.us", "vault.usgovcloudapi.net"),
    "china": Cloud(
        "china",
        "https://microsoftgraph.chinacloudapi.cn",
        "vault.azure.cn",
        supports_validation=False,
        supports_job_start=False,
    ),
}
