"""A provisioning estate on the stand-ins: enterprise apps with jobs, tokens in Key Vault, and the
``SYNC_CONFIG`` document that points the function app at them.

Shared by the tests, the local sandbox and the benches, so all three exercise the same wiring.
Every planted secret value is a canary (``canary_values``): tests assert none of them ever shows
up in a log record, a response or printed output.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .stack import DEFAULT_VAULT, StandinStack


def canary(label: str = "token") -> str:
    """A value that is easy to find if it ever leaks."""
    return f"CANARY-{label}-{secrets.token_hex(12)}"


@dataclass
class TargetSetup:
    """One enterprise application with a SCIM provisioning job, as seeded on the stand-ins."""

    name: str
    service_principal_id: str
    job_id: str
    secret_name: str
    vault: str
    base_address: str
    configured_job_id: bool = True
    resume_quarantined: bool | None = None
    extra_secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def config_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "servicePrincipalId": self.service_principal_id,
            "templateId": "scim",
            "secrets": {
                "BaseAddress": {"value": self.base_address},
                "SecretToken": {"keyVaultSecret": self.secret_name, "keyVault": self.vault},
                **self.extra_secrets,
            },
        }
        if self.configured_job_id:
            entry["jobId"] = self.job_id
        if self.resume_quarantined is not None:
            entry["resumeQuarantined"] = self.resume_quarantined
        return entry


class Scenario:
    """Builds targets on a running ``StandinStack`` and the matching config document."""

    def __init__(self, stack: StandinStack) -> None:
        self.stack = stack
        self.targets: dict[str, TargetSetup] = {}
        self.canary_values: set[str] = set()
        self.overrides: dict[str, Any] = {}
        self._values: dict[tuple[str, str], str] = {}

    def add_target(
        self,
        name: str,
        *,
        secret_name: str | None = None,
        vault: str = DEFAULT_VAULT,
        job_status: str = "Active",
        quarantine_reason: str | None = None,
        configured_job_id: bool = True,
        resume_quarantined: bool | None = None,
        stored_extra: Mapping[str, str] | None = None,
        initial_token: bool = True,
    ) -> TargetSetup:
        """An app whose job currently holds an old token, with a current token already in Key Vault."""
        graph = self.stack.graph
        sp_id = str(uuid.uuid4())
        graph.add_service_principal(sp_id)
        job_id = graph.add_job(sp_id, template_id="scim", status=job_status, quarantine_reason=quarantine_reason)
        setup = TargetSetup(
            name=name,
            service_principal_id=sp_id,
            job_id=job_id,
            secret_name=secret_name or f"{name}-token".replace(".", "-").replace("_", "-"),
            vault=vault,
            base_address=f"https://scim.{name.lower().replace('_', '-')}.example/v2",
            configured_job_id=configured_job_id,
            resume_quarantined=resume_quarantined,
        )
        old_token = canary("old")
        self.canary_values.add(old_token)
        graph.set_stored_secrets(
            sp_id, {"BaseAddress": setup.base_address, "SecretToken": old_token, **dict(stored_extra or {})}
        )
        self.canary_values.update(v for k, v in (stored_extra or {}).items() if k != "SyncAll")
        self.targets[name] = setup
        if initial_token:
            current = self._values.get((vault, setup.secret_name.lower()))
            if current is not None:  # a secret shared with an earlier target
                graph.accept_credentials(sp_id, self._accepted(setup, current))
            else:
                self.rotate(setup.secret_name, vault=vault)
        return setup

    @staticmethod
    def _accepted(setup: TargetSetup, token: str) -> dict[str, str]:
        return {"BaseAddress": setup.base_address, "SecretToken": token}

    def rotate(self, secret_name: str, *, vault: str = DEFAULT_VAULT, accept: bool = True, **attributes: Any) -> str:
        """A new token: the SCIM app issues it (and accepts it), and it lands in Key Vault as a new version.

        Returns the new Key Vault version id. With ``accept=False`` the app does not accept the new
        value (a token pasted wrongly into Key Vault).
        """
        value = canary("token")
        self.canary_values.add(value)
        version = self.stack.vaults[vault].set_secret(secret_name, value, **attributes)
        self._values[(vault, secret_name.lower())] = value
        if accept:
            for setup in self.targets.values():
                if setup.vault == vault and setup.secret_name.lower() == secret_name.lower():
                    self.stack.graph.accept_credentials(setup.service_principal_id, self._accepted(setup, value))
        return version

    def current_token(self, secret_name: str, vault: str = DEFAULT_VAULT) -> str:
        return self._values[(vault, secret_name.lower())]

    def job_token(self, name: str) -> str | None:
        setup = self.targets[name]
        return self.stack.graph.stored_secrets(setup.service_principal_id).get("SecretToken")

    def config_document(self, **overrides: Any) -> dict[str, Any]:
        vaults = sorted({t.vault for t in self.targets.values()} | {DEFAULT_VAULT})
        document: dict[str, Any] = {
            "graph": {"endpoint": self.stack.graph.url},
            "keyVaults": [{"name": v, "url": self.stack.vaults[v].url} for v in vaults],
            "targets": [t.config_entry() for t in self.targets.values()],
        }
        document.update(self.overrides)
        document.update(overrides)
        return document

    def config_json(self, **overrides: Any) -> str:
        return json.dumps(self.config_document(**overrides))

    def environ(self, **overrides: Any) -> dict[str, str]:
        """Everything the function app reads: the stand-ins' endpoints and ``SYNC_CONFIG``."""
        return {**self.stack.environ(), "SYNC_CONFIG": self.config_json(**overrides)}
