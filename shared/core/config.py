"""The ``SYNC_CONFIG`` document: read, validated as a whole, turned into typed models.

Validation collects every problem with its field path (``targets[1].servicePrincipalId: not a GUID``)
before anything is called, so an operator fixes a broken document in one go. Unknown fields are
errors: a misspelled ``resumeQuarantined`` must not silently turn resumption back on.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import identifiers, strict_json
from .clouds import CLOUDS, Cloud
from .errors import ConfigInvalid
from .redaction import SecretValue

DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
DEFAULT_DEADLINE_SECONDS = 120.0
MAX_DEADLINE_SECONDS = 230.0  # the HTTP front end cuts responses at 230 s

#: Keys whose values are credentials: they must come from Key Vault, never as literals in app settings.
CREDENTIAL_KEYS: frozenset[str] = frozenset(
    {
        "Password", "SecretToken", "AppKey", "ClientSecret", "ConsumerSecret", "TokenKey", "Oauth2AccessToken",
        "Oauth2RefreshToken", "Oauth2ClientSecret", "Oauth2AuthorizationCode", "ConnectionString",
    }
)  # fmt: skip

ALLOWED_VAULT_HOSTS_SETTING = "SYNC_ALLOWED_VAULT_HOSTS"
#: Client id of the user-assigned identity, set by the deployment template; used when the document omits
#: ``managedIdentityClientId`` (the document and the setting must agree when both are given).
MANAGED_IDENTITY_CLIENT_ID_SETTING = "SYNC_MANAGED_IDENTITY_CLIENT_ID"


@dataclass(frozen=True)
class KeyVault:
    name: str
    url: str

    @property
    def is_loopback(self) -> bool:
        return is_loopback_url(self.url)


@dataclass(frozen=True)
class LiteralSource:
    """A configured literal (BaseAddress and other non-credential settings)."""

    value: SecretValue


@dataclass(frozen=True)
class KeyVaultSource:
    secret_name: str
    vault_name: str  # canonical spelling from ``keyVaults``

    @property
    def ref(self) -> SecretRef:
        return SecretRef(self.vault_name.lower(), self.secret_name.lower())


@dataclass(frozen=True, order=True)
class SecretRef:
    """A Key Vault secret as Key Vault compares it: vault and secret name, case-insensitive."""

    vault: str
    secret: str


SecretSource = LiteralSource | KeyVaultSource


@dataclass(frozen=True)
class Target:
    name: str
    service_principal_id: str
    job_id: str | None
    template_id: str | None
    secrets: Mapping[str, SecretSource]
    resume_quarantined: bool

    @property
    def key_vault_refs(self) -> frozenset[SecretRef]:
        return frozenset(s.ref for s in self.secrets.values() if isinstance(s, KeyVaultSource))

    def uses(self, ref: SecretRef) -> bool:
        return ref in self.key_vault_refs


@dataclass(frozen=True)
class SyncConfig:
    cloud: Cloud
    graph_endpoint: str
    graph_api_version: str
    managed_identity_client_id: str | None
    key_vaults: Mapping[str, KeyVault]  # by lower-case name
    concurrency: int
    deadline_seconds: float
    validation_required: bool
    targets: tuple[Target, ...]
    source: str = field(default="", compare=False)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def vault(self, name: str) -> KeyVault | None:
        return self.key_vaults.get(name.lower())

    def targets_using(self, refs: set[SecretRef]) -> list[Target]:
        return [t for t in self.targets if t.key_vault_refs & refs]

    def secret_names(self) -> set[str]:
        return {ref.secret for t in self.targets for ref in t.key_vault_refs}


# --- Loading -----------------------------------------------------------------------------------------


def load_config(environ: Mapping[str, str], app_root: Path) -> SyncConfig:
    """Read ``SYNC_CONFIG`` (JSON text or a path relative to the app root) and validate it.

    Which one it is, is decided by shape, never by trying: text that starts like JSON (``{``, ``[``,
    after a byte-order mark and blanks) or that a path never holds (a line break, a brace, a quote) is
    the document; anything else is a path. Neither the document nor a path of an unexpected shape is
    ever repeated in an error (the document holds tenant URLs and ids; a mis-pasted value could be worse).
    """
    raw = environ.get("SYNC_CONFIG", "").lstrip(_BOM).strip()
    if not raw:
        raise ConfigInvalid(["SYNC_CONFIG: not set"])
    if _looks_like_json(raw):
        text, source = raw, "SYNC_CONFIG"
    else:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = app_root / path
        try:
            text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark (Windows editors) is dropped
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigInvalid(
                [f"SYNC_CONFIG: not a JSON document, and cannot read {_shown_path(path)} ({reason})"]
            ) from None
        source = str(path)
    allowed_hosts = {h.strip().lower() for h in environ.get(ALLOWED_VAULT_HOSTS_SETTING, "").split(",") if h.strip()}
    client_id = environ.get(MANAGED_IDENTITY_CLIENT_ID_SETTING, "").strip() or None
    return parse_config(text, source=source, allowed_vault_hosts=allowed_hosts, managed_identity_client_id=client_id)


_BOM = "\ufeff"
#: Characters that start a JSON document, or that no file path here holds.
_JSON_START = ("{", "[", '"')
_NEVER_IN_A_PATH = ("\n", "\r", "{", "}", '"', "[", "]")
_SHOWABLE_FILE_NAME = re.compile(r"[A-Za-z0-9._ -]{1,100}")


def _looks_like_json(text: str) -> bool:
    return text.startswith(_JSON_START) or any(ch in text for ch in _NEVER_IN_A_PATH)


def _shown_path(path: Path) -> str:
    """The file's name if it has the shape of one, else nothing: never a piece of a document."""
    return f"file {path.name!r}" if _SHOWABLE_FILE_NAME.fullmatch(path.name) else "the file it names (name not shown)"


def parse_config(
    text: str,
    *,
    source: str = "SYNC_CONFIG",
    allowed_vault_hosts: set[str] | None = None,
    managed_identity_client_id: str | None = None,
) -> SyncConfig:
    text = text.lstrip(_BOM)
    try:
        document = strict_json.loads(text)
    except strict_json.DuplicateKey as exc:
        shown = exc.key if _SHOWABLE_FILE_NAME.fullmatch(exc.key) else "(a key of an unexpected shape)"
        raise ConfigInvalid([f"{shown}: appears twice in one object"]) from None
    except ValueError as exc:
        raise ConfigInvalid([f"SYNC_CONFIG: not valid JSON ({_json_error_position(exc)})"]) from None
    return _Validator(allowed_vault_hosts or set(), managed_identity_client_id).validate(document, source)


def _json_error_position(exc: ValueError) -> str:
    # json.JSONDecodeError's text quotes no document content beyond line/column: safe to show.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "unreadable"


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Validation --------------------------------------------------------------------------------------

_TOP_FIELDS = {
    "cloud", "graph", "managedIdentityClientId", "keyVaults", "concurrency", "deadlineSeconds", "validation", "targets",
}  # fmt: skip
_TARGET_FIELDS = {"name", "servicePrincipalId", "jobId", "templateId", "secrets", "resumeQuarantined"}


class _Validator:
    """Walks the document once, collecting every problem with its path."""

    def __init__(self, allowed_vault_hosts: set[str], client_id_setting: str | None = None) -> None:
        self.problems: list[str] = []
        self.allowed_vault_hosts = allowed_vault_hosts
        self.client_id_setting = client_id_setting

    def problem(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}")

    def unknown_fields(self, obj: Mapping[str, Any], allowed: set[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.problem(f"{path}{'.' if path else ''}{key}", "unknown field")

    def validate(self, doc: Any, source: str) -> SyncConfig:
        if not isinstance(doc, dict):
            raise ConfigInvalid(["SYNC_CONFIG: must be a JSON object"])
        self.unknown_fields(doc, _TOP_FIELDS, "")

        cloud_name = doc.get("cloud", "global")
        cloud = CLOUDS.get(cloud_name) if isinstance(cloud_name, str) else None
        if cloud is None:
            self.problem("cloud", f"must be one of {', '.join(CLOUDS)}")
            cloud = CLOUDS["global"]

        graph_endpoint, api_version = self.graph(doc.get("graph", {}), cloud)

        client_id = doc.get("managedIdentityClientId")
        if client_id is not None and not identifiers.is_guid(client_id):
            self.problem("managedIdentityClientId", "not a GUID")
            client_id = None
        client_id = self.client_id_from_setting(doc, client_id)

        vaults = self.key_vaults(doc.get("keyVaults"), cloud)
        concurrency = self.integer(doc, "concurrency", DEFAULT_CONCURRENCY, 1, MAX_CONCURRENCY)
        deadline = self.number(doc, "deadlineSeconds", DEFAULT_DEADLINE_SECONDS, 1, MAX_DEADLINE_SECONDS)

        validation = doc.get("validation", "required")
        if validation not in ("required", "skip"):
            self.problem("validation", "must be 'required' or 'skip'")
            validation = "required"
        if validation == "required" and not cloud.supports_validation:
            self.problem(
                "validation",
                f'cloud \'{cloud.name}\' does not offer validateCredentials; set "validation": "skip" '
                "explicitly to push credentials without validating them",
            )

        targets = self.targets(doc.get("targets"), vaults, cloud)
        if self.problems:
            raise ConfigInvalid(self.problems)
        return SyncConfig(
            cloud=cloud,
            graph_endpoint=graph_endpoint,
            graph_api_version=api_version,
            managed_identity_client_id=client_id,
            key_vaults=vaults,
            concurrency=concurrency,
            deadline_seconds=deadline,
            validation_required=validation == "required",
            targets=tuple(targets),
            source=source,
        )

    def client_id_from_setting(self, doc: Mapping[str, Any], client_id: str | None) -> str | None:
        """The ``SYNC_MANAGED_IDENTITY_CLIENT_ID`` app setting fills in an omitted ``managedIdentityClientId``."""
        setting = self.client_id_setting
        if setting is None:
            return client_id
        if not identifiers.is_guid(setting):
            self.problem(MANAGED_IDENTITY_CLIENT_ID_SETTING, "app setting: not a GUID")
            return client_id
        if "managedIdentityClientId" in doc and client_id is not None and client_id.lower() != setting.lower():
            self.problem(
                "managedIdentityClientId",
                f"differs from the {MANAGED_IDENTITY_CLIENT_ID_SETTING} app setting; remove one of them",
            )
            return client_id
        return client_id or setting

    def graph(self, graph: Any, cloud: Cloud) -> tuple[str, str]:
        if not isinstance(graph, dict):
            self.problem("graph", "must be an object")
            return cloud.graph_root, "v1.0"
        self.unknown_fields(graph, {"endpoint", "apiVersion"}, "graph")
        endpoint = graph.get("endpoint", cloud.graph_root)
        if not isinstance(endpoint, str) or not self.https_origin(endpoint):
            self.problem("graph.endpoint", "must be an https URL with no query or fragment")
            endpoint = cloud.graph_root
        api_version = graph.get("apiVersion", "v1.0")
        if api_version not in ("v1.0", "beta"):
            self.problem("graph.apiVersion", "must be 'v1.0' or 'beta'")
            api_version = "v1.0"
        return endpoint.rstrip("/"), api_version

    @staticmethod
    def https_origin(url: str) -> bool:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            return False
        return parts.scheme == "https" and bool(parts.hostname) and not parts.query and not parts.fragment

    def key_vaults(self, value: Any, cloud: Cloud) -> dict[str, KeyVault]:
        vaults: dict[str, KeyVault] = {}
        if not isinstance(value, list) or not value:
            self.problem("keyVaults", "required: a non-empty list")
            return vaults
        for i, entry in enumerate(value):
            path = f"keyVaults[{i}]"
            if not isinstance(entry, dict):
                self.problem(path, "must be an object")
                continue
            self.unknown_fields(entry, {"name", "url"}, path)
            name = entry.get("name")
            if not identifiers.is_vault_name(name):
                self.problem(f"{path}.name", "not a Key Vault name (3-24 letters, digits and dashes)")
                continue
            if name.lower() in vaults:
                self.problem(f"{path}.name", f"duplicate vault '{name}'")
                continue
            url = entry.get("url", f"https://{name}.{cloud.vault_suffix}")
            if not isinstance(url, str) or not self.vault_url_allowed(url, cloud, f"{path}.url"):
                continue
            vaults[name.lower()] = KeyVault(name=name, url=url.rstrip("/"))
        return vaults

    def vault_url_allowed(self, url: str, cloud: Cloud, path: str) -> bool:
        if not self.https_origin(url) or urlsplit(url).path not in ("", "/"):
            self.problem(path, "must be an https URL of a vault (no path, query or fragment)")
            return False
        host = (urlsplit(url).hostname or "").lower()
        if is_loopback_url(url) or host in self.allowed_vault_hosts or host.endswith("." + cloud.vault_suffix):
            return True
        self.problem(
            path,
            f"host must end with '.{cloud.vault_suffix}' for cloud '{cloud.name}' "
            f"(list private hosts in the {ALLOWED_VAULT_HOSTS_SETTING} app setting)",
        )
        return False

    def integer(self, doc: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = doc.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(key, f"must be a whole number from {low} to {high}")
            return default
        return value

    def number(self, doc: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
        value = doc.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            self.problem(key, f"must be a number from {low:g} to {high:g}")
            return default
        return float(value)

    def targets(self, value: Any, vaults: Mapping[str, KeyVault], cloud: Cloud) -> list[Target]:
        targets: list[Target] = []
        if not isinstance(value, list) or not value:
            self.problem("targets", "required: a non-empty list")
            return targets
        seen: set[str] = set()
        for i, entry in enumerate(value):
            path = f"targets[{i}]"
            if not isinstance(entry, dict):
                self.problem(path, "must be an object")
                continue
            target = self.target(entry, path, vaults, cloud)
            if target is None:
                continue
            if target.name.casefold() in seen:
                self.problem(f"{path}.name", f"duplicate target name '{target.name}'")
                continue
            seen.add(target.name.casefold())
            targets.append(target)
        return targets

    def target(
        self, entry: Mapping[str, Any], path: str, vaults: Mapping[str, KeyVault], cloud: Cloud
    ) -> Target | None:
        before = len(self.problems)
        self.unknown_fields(entry, _TARGET_FIELDS, path)
        name = entry.get("name")
        if not identifiers.is_target_name(name):
            self.problem(f"{path}.name", "required: 1-64 of A-Z a-z 0-9 . _ -")
        sp_id = entry.get("servicePrincipalId")
        if not identifiers.is_guid(sp_id):
            self.problem(f"{path}.servicePrincipalId", "not a GUID")
        job_id = entry.get("jobId")
        if job_id is not None and not identifiers.is_job_id(job_id):
            self.problem(f"{path}.jobId", "not a synchronization job id (letters, digits, '.', '_', '-')")
        template_id = entry.get("templateId")
        if template_id is not None and not (
            isinstance(template_id, str) and identifiers.TEMPLATE_ID.fullmatch(template_id)
        ):
            self.problem(f"{path}.templateId", "not a template id (letters, digits, '.', '_', '-')")
        resume = entry.get("resumeQuarantined", cloud.supports_job_start)
        if not isinstance(resume, bool):
            self.problem(f"{path}.resumeQuarantined", "must be true or false")
        elif resume and not cloud.supports_job_start:
            self.problem(f"{path}.resumeQuarantined", f"cloud '{cloud.name}' does not offer starting a job; set false")
        secrets = self.secrets(entry.get("secrets"), f"{path}.secrets", vaults)
        if len(self.problems) > before:
            return None
        return Target(
            name=name,
            service_principal_id=sp_id.lower(),
            job_id=job_id,
            template_id=template_id,
            secrets=secrets,
            resume_quarantined=resume,
        )

    def secrets(self, value: Any, path: str, vaults: Mapping[str, KeyVault]) -> dict[str, SecretSource]:
        sources: dict[str, SecretSource] = {}
        if not isinstance(value, dict) or not value:
            self.problem(path, "required: an object mapping synchronization secret keys to sources")
            return sources
        for key, source in value.items():
            key_path = f"{path}.{key}"
            if key not in identifiers.SYNCHRONIZATION_SECRET_KEYS:
                hint = identifiers.suggest_secret_key(key)
                self.problem(key_path, f"not a synchronizationSecret key{f' (did you mean {hint!r}?)' if hint else ''}")
                continue
            if not isinstance(source, dict):
                self.problem(key_path, 'must be {"value": ...} or {"keyVaultSecret": ..., "keyVault": ...}')
                continue
            parsed = self.source(source, key, key_path, vaults)
            if parsed is not None:
                sources[key] = parsed
        return sources

    def source(
        self, source: Mapping[str, Any], key: str, path: str, vaults: Mapping[str, KeyVault]
    ) -> SecretSource | None:
        if "value" in source:
            self.unknown_fields(source, {"value"}, path)
            if not isinstance(source["value"], str):
                self.problem(f"{path}.value", "must be a string")
                return None
            if key in CREDENTIAL_KEYS:
                self.problem(path, f"{key} is a credential: read it from Key Vault, not from a literal in app settings")
                return None
            if not source["value"].strip():
                # Graph is reported to treat PUT as a merge in which an empty value deletes the key.
                self.problem(f"{path}.value", "must not be empty: an empty value would delete the key from the job")
                return None
            return LiteralSource(SecretValue(source["value"]))
        self.unknown_fields(source, {"keyVaultSecret", "keyVault"}, path)
        secret_name = source.get("keyVaultSecret")
        if not identifiers.is_secret_name(secret_name):
            self.problem(f"{path}.keyVaultSecret", "required: a Key Vault secret name (1-127 letters, digits, dashes)")
            return None
        vault_name = source.get("keyVault")
        if vault_name is None:
            if len(vaults) != 1:
                self.problem(f"{path}.keyVault", "required when more than one vault is configured")
                return None
            vault = next(iter(vaults.values()))
        else:
            vault = vaults.get(vault_name.lower()) if isinstance(vault_name, str) else None
            if vault is None:
                self.problem(f"{path}.keyVault", "not one of keyVaults[].name")
                return None
        return KeyVaultSource(secret_name=secret_name, vault_name=vault.name)
