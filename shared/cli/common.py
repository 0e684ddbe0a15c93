"""What every CLI command shares: the invocation context, config loading, exit codes, tables, Key Vault reads."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..clients.graph import SyncJob
    from ..clients.keyvault import SecretInfo
    from ..core.config import KeyVaultSource, SecretRef, SyncConfig, Target
    from ..core.errors import SyncError
    from ..sync.runtime import Services, Worker
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_RETRYABLE = 3

#: ``check`` warns about Key Vault secrets whose current version expires sooner than this.
EXPIRY_WARNING_DAYS = 30

APP_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Context:
    args: argparse.Namespace
    out: TextIO
    _worker: Worker | None = None

    @property
    def json(self) -> bool:
        return bool(self.args.json)

    def environ(self) -> dict[str, str]:
        environ = dict(os.environ)
        if self.args.config:
            environ["SYNC_CONFIG"] = str(Path(self.args.config).expanduser().resolve())
        return environ

    def worker(self) -> Worker:
        if self._worker is None:
            from ..clients.identity import developer_provider, managed_identity_provider
            from ..sync.runtime import Worker, managed_identity_for

            managed = self.args.credential == "managed-identity"
            self._worker = Worker(
                APP_ROOT,
                self.environ(),
                credential_factory=managed_identity_for if managed else developer_credential,
                storage_credential_factory=managed_identity_provider
                if managed
                else (lambda client_id, settings: developer_provider(settings, client_id)),
            )
        return self._worker

    def config(self) -> SyncConfig:
        return self.worker().config()

    def emit(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def emit_json(self, body: Any) -> None:
        self.emit(json.dumps(body, indent=2, sort_keys=False, default=str))


def developer_credential(config: SyncConfig, settings: Any) -> Any:
    from ..clients.identity import developer_provider

    return developer_provider(settings, config.managed_identity_client_id)


#: What the commands import on first use (``requirements.txt``); checked before anything runs.
RUNTIME_MODULES = ("azure.identity", "azure.keyvault.secrets", "requests")
HOW_TO_RUN = "python3 dev.py cli"


def missing_runtime_modules() -> list[str]:
    """The runtime dependencies this Python lacks (a system Python on a fresh clone lacks them all)."""
    missing = []
    for name in RUNTIME_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # the parent package (azure) is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def load_config_or_report(ctx: Context) -> SyncConfig | int:
    """The config, or the exit code after reporting why it is invalid (or why nothing can sign in, or
    why this Python cannot run the commands at all)."""
    from ..core.errors import ConfigInvalid

    missing = missing_runtime_modules()
    if missing:
        message = (
            f"this Python ({sys.executable}) does not have the project's dependencies ({', '.join(missing)}): "
            f"run the command as `{HOW_TO_RUN} {ctx.args.command} ...` from the repository (it builds .venv with "
            "them and runs the CLI there), or install requirements.txt into the Python you use"
        )
        if ctx.json:
            ctx.emit_json({"status": "failed", "error": {"message": message}})
        else:
            ctx.emit(message)
        return EXIT_USAGE
    try:
        config = ctx.config()
    except ConfigInvalid as error:
        if ctx.json:
            ctx.emit_json({"status": "failed", "error": error.to_dict()})
        else:
            ctx.emit("SYNC_CONFIG is invalid (ConfigInvalid):")
            for problem in error.problems:
                ctx.emit(f"  {problem}")
        return EXIT_USAGE
    return _signed_in_or_report(ctx, config)


def _signed_in_or_report(ctx: Context, config: SyncConfig) -> SyncConfig | int:
    """With ``--credential default``, one token request first: without a sign-in every secret, permission and
    job would fail with the same advice. Said once, and the command stops (the token is cached for the rest)."""
    from ..core.errors import SignInRequired, SyncError

    if ctx.args.credential != "default":
        return config
    try:
        ctx.worker().services(config).credential.get_token(config.cloud.graph_scope)
    except SignInRequired as error:
        if ctx.json:
            ctx.emit_json({"status": "failed", "error": error.to_dict()})
        else:
            ctx.emit(f"{error.code}: {error.message}")
        return EXIT_FAILED
    except SyncError:  # any other failure is reported by the command itself, where it belongs
        pass
    return config


def exit_code_of(errors: Iterable[tuple[bool, bool]]) -> int:
    """From (failed, retryable) pairs: 3 if any retryable failure, else 1 if any failure, else 0."""
    failed = [retryable for is_failed, retryable in errors if is_failed]
    if any(failed):
        return EXIT_RETRYABLE
    return EXIT_FAILED if failed else EXIT_OK


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines)


def new_graph_call() -> Callable[[float], Any]:
    from ..clients.graph import GraphCall
    from ..core.redaction import Redactor
    from ..core.retry import Deadline

    return lambda seconds: GraphCall(Deadline(seconds), Redactor(), [])


def new_deadline(config: SyncConfig) -> Any:
    from ..core.retry import Deadline

    return Deadline(config.deadline_seconds)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_date(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def run_parallel(config: SyncConfig, work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(config.concurrency, len(items)), thread_name_prefix="cli") as pool:
        return list(pool.map(work, items))


def key_vault_sources(config: SyncConfig) -> dict[SecretRef, KeyVaultSource]:
    from ..core.config import KeyVaultSource

    sources: dict[SecretRef, KeyVaultSource] = {}
    for target in config.targets:
        for source in target.secrets.values():
            if isinstance(source, KeyVaultSource):
                sources.setdefault(source.ref, source)
    return sources


@dataclass
class SecretRead:
    """One Key Vault secret's current version as ``check`` and ``status`` see it."""

    vault: str
    name: str
    info: SecretInfo | None = None
    error: SyncError | None = None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {"vault": self.vault, "secret": self.name}
        if self.info is not None:
            expires = self.info.expires_on
            body.update(
                {
                    "version": self.info.version,
                    "enabled": self.info.enabled,
                    "expiresOn": expires.isoformat() if expires else None,
                    "expiresInDays": in_days(expires - now) if expires else None,
                    "notBefore": self.info.not_before.isoformat() if self.info.not_before else None,
                }
            )
        if self.error is not None:
            body["error"] = self.error.to_dict()
        return body


def in_days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


def read_secrets(config: SyncConfig, services: Services) -> dict[SecretRef, SecretRead]:
    from ..core.errors import SyncError

    sources = key_vault_sources(config)
    deadline = new_deadline(config)

    def read(ref: SecretRef) -> SecretRead:
        source = sources[ref]
        found = SecretRead(vault=source.vault_name, name=source.secret_name)
        try:
            found.info = services.reader(ref.vault).read_properties(source.secret_name, deadline)
        except SyncError as error:
            found.error = error
        return found

    refs = sorted(sources)
    return dict(zip(refs, run_parallel(config, read, refs), strict=True))


def find_job(services: Services, target: Target, call: Any) -> SyncJob:
    """The configured job, or the only job of the service principal (the pipeline's discovery rule)."""
    graph = services.graph
    if target.job_id:
        return graph.get_job(target.service_principal_id, target.job_id, call)
    return graph.only_job(target.service_principal_id, call)
