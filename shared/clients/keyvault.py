"""Reading the current version of Key Vault secrets with ``azure-keyvault-secrets``.

Always the current (latest) version, never the one an event names: events arrive late, twice
and out of order, and a rotation must converge on what the vault holds now. A disabled, expired
or not-yet-valid current version fails the target; there is no fallback to an older version.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, timezone
from threading import Event, Lock
from typing import TYPE_CHECKING, Any

from ..core.config import KeyVault, SecretRef
from ..core.errors import (
    DeadlineExceeded,
    KeyVaultForbidden,
    KeyVaultRequestFailed,
    KeyVaultSecretDisabled,
    KeyVaultSecretEmpty,
    KeyVaultSecretExpired,
    KeyVaultSecretNotFound,
    KeyVaultSecretNotYetValid,
    KeyVaultThrottled,
    KeyVaultUnavailable,
    SyncError,
)
from ..core.redaction import Redactor, SecretValue
from ..core.retry import Deadline, RetrySettings, deadline_retry_policy_class, deadline_scope

if TYPE_CHECKING:
    from azure.keyvault.secrets import KeyVaultSecret, SecretClient

    from .identity import TokenProvider

KEY_VAULT_SECRETS_USER_ROLE = "Key Vault Secrets User (4633458b-17de-408a-b874-0445c86b69e6)"


@dataclass(frozen=True)
class ResolvedSecret:
    """The current version of one secret, as read at ``read_started`` (monotonic clock)."""

    ref: SecretRef
    name: str
    vault: str
    version: str
    value: SecretValue
    expires_on: datetime | None
    not_before: datetime | None
    read_started: float
    read_finished: float
    #: Key Vault's ``created`` time of this version: what orders versions across instances (the ledger).
    created_on: datetime | None = None


@dataclass(frozen=True)
class SecretInfo:
    """The attributes of a secret's current version, for the operator CLI. Never its value."""

    name: str
    vault: str
    version: str
    enabled: bool | None
    expires_on: datetime | None
    not_before: datetime | None


class SecretReader:
    """One ``SecretClient`` per vault, built on first use and reused by later invocations."""

    def __init__(self, vault: KeyVault, credential: TokenProvider, settings: RetrySettings, pool_size: int) -> None:
        self.vault = vault
        self._credential = credential
        self._settings = settings
        self._pool_size = pool_size
        self._client: SecretClient | None = None
        self._lock = Lock()
        self._first_read = Lock()
        self._challenge_answered = Event()

    def _secret_client(self) -> SecretClient:
        with self._lock:
            if self._client is None:
                from azure.core.pipeline.transport import RequestsTransport
                from azure.keyvault.secrets import SecretClient

                from .http_session import pooled_session

                self._client = SecretClient(
                    vault_url=self.vault.url,
                    credential=self._credential,
                    # The challenge-resource check stays on except for a loopback stand-in.
                    verify_challenge_resource=not self.vault.is_loopback,
                    # Timeouts go to the transport: with a transport given, SecretClient's own timeout
                    # arguments are not applied (the transport would keep azure-core's 300 s defaults).
                    transport=RequestsTransport(
                        session=pooled_session(self._pool_size),
                        session_owner=False,
                        connection_timeout=self._settings.connect_timeout,
                        read_timeout=self._settings.read_timeout,
                    ),
                    retry_policy=_deadline_retry_policy(self._settings),
                    connection_timeout=self._settings.connect_timeout,
                    read_timeout=self._settings.read_timeout,
                )
            return self._client

    def _get_secret(self, name: str, deadline: Deadline) -> KeyVaultSecret:
        """``get_secret`` (latest version); the first read of this vault goes alone.

        Concurrent first reads would each go out without a token, each get the 401 challenge and each
        ask for a token. So the first read answers the challenge (the SDK then keeps it per vault host
        for the process) while the others wait for it, and then they all go at once. A first read that
        fails still lets the others go.
        """
        client = self._secret_client()
        if not self._challenge_answered.is_set() and self._first_read.acquire(timeout=deadline.remaining()):
            try:
                if not self._challenge_answered.is_set():
                    try:
                        return client.get_secret(name, sync_deadline=deadline, timeout=deadline.remaining())
                    finally:
                        self._challenge_answered.set()
            finally:
                self._first_read.release()
        return client.get_secret(name, sync_deadline=deadline, timeout=deadline.remaining())

    def _fetch(self, name: str, deadline: Deadline) -> KeyVaultSecret:
        """The current version as the SDK returns it; SDK errors become typed errors."""
        deadline.check(f"reading Key Vault secret '{name}'")
        from azure.core.exceptions import AzureError

        try:
            # The scope also bounds the token request the SDK makes from inside this call.
            with deadline_scope(deadline):
                return self._get_secret(name, deadline)
        except SyncError:
            raise
        except AzureError as exc:
            raise self._classify(exc, name, deadline) from None
        except ValueError as exc:  # a 2xx whose body is not JSON: the SDK's decoder raises json's error
            raise KeyVaultUnavailable(
                f"reading secret '{name}' in vault '{self.vault.name}' was answered with a body that is not Key "
                f"Vault's ({type(exc).__name__}): a gateway or proxy may have answered; retry later (if it persists, "
                "check the vault URL and what sits between the app and the vault)"
            ) from None

    def read_current(
        self, ref: SecretRef, name: str, deadline: Deadline, now: Callable[[], datetime]
    ) -> ResolvedSecret:
        """The current version, checked for enabled / expiry / not-before."""
        started = time.monotonic()
        secret = self._fetch(name, deadline)
        finished = time.monotonic()
        props = secret.properties
        where = f"secret '{name}' in vault '{self.vault.name}' (version {props.version})"
        if props.enabled is False:
            raise KeyVaultSecretDisabled(f"the current version of {where} is disabled: enable it or add a new version")
        moment = now()
        if props.expires_on is not None and props.expires_on <= moment:
            raise KeyVaultSecretExpired(
                f"the current version of {where} expired at {props.expires_on.isoformat()}: add a new version",
                details={"expiresOn": props.expires_on.isoformat()},
            )
        if props.not_before is not None and props.not_before > moment:
            raise KeyVaultSecretNotYetValid(
                f"the current version of {where} is not valid before {props.not_before.isoformat()}: syncs "
                "succeed from then on; to push sooner, add a version that is valid now",
                details={"notBefore": props.not_before.isoformat()},
            )
        if secret.value is None:
            raise KeyVaultRequestFailed(f"Key Vault returned no value for {where}")
        _refuse_empty(secret.value, where)
        return ResolvedSecret(
            ref=ref,
            name=name,
            vault=self.vault.name,
            version=props.version or "",
            value=SecretValue(secret.value),
            expires_on=props.expires_on,
            not_before=props.not_before,
            read_started=started,
            read_finished=finished,
            created_on=props.created_on,
        )

    def read_properties(self, name: str, deadline: Deadline) -> SecretInfo:
        """The current version's attributes (``check``, ``status``); nothing is judged, nothing is kept.

        Key Vault has no attributes-only read of the latest version, so this reads the secret like a
        sync does (which also proves the identity may read it) and drops the value here; an empty value
        is therefore reported here (``KeyVaultSecretEmpty``), where it can still be seen.
        """
        secret = self._fetch(name, deadline)
        props = secret.properties
        if secret.value is not None:
            _refuse_empty(secret.value, f"secret '{name}' in vault '{self.vault.name}' (version {props.version})")
        return SecretInfo(
            name=props.name or name,
            vault=self.vault.name,
            version=props.version or "",
            enabled=props.enabled,
            expires_on=props.expires_on,
            not_before=props.not_before,
        )

    def _classify(self, exc: Exception, name: str, deadline: Deadline) -> SyncError:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        where = f"secret '{name}' in vault '{self.vault.name}'"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        error_code = _inner_code(exc)
        details: dict[str, Any] = {"httpStatus": status} if status else {}
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return KeyVaultSecretNotFound(
                f"{where} does not exist (or was deleted): create it (or recover it if soft-deleted), or fix "
                "keyVaultSecret / keyVault in the config",
                details=details,
            )
        # "Public network access is disabled" is a network denial, not a disabled secret: match the secret's wording.
        if status == 403 and (
            error_code == "SecretDisabled" or "on a disabled secret" in str(getattr(exc, "message", "")).lower()
        ):
            return KeyVaultSecretDisabled(f"the current version of {where} is disabled: enable it or add a new version")
        if status == 403:
            return _forbidden(exc, where, error_code, details)
        if status == 429:
            return KeyVaultThrottled(f"Key Vault throttled reading {where}; retry later", details=details)
        if isinstance(exc, ClientAuthenticationError) or status == 401:
            return KeyVaultRequestFailed(
                f"Key Vault refused the token while reading {where}: check that the vault is in the configured cloud",
                details=details,
            )
        if deadline.expired:
            return DeadlineExceeded(f"the invocation deadline passed while reading {where}")
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)) or (status and status >= 500):
            return KeyVaultUnavailable(
                f"Key Vault did not answer reading {where} ({type(exc).__name__}"
                f"{f', HTTP {status}' if status else ''}); retry later",
                details=details,
            )
        return KeyVaultRequestFailed(f"reading {where} failed ({type(exc).__name__})", details=details)


def _inner_code(exc: Exception) -> str | None:
    error = getattr(exc, "error", None)
    inner = getattr(error, "innererror", None) or {}
    if isinstance(inner, dict):
        code = inner.get("code")
        # A fixed Key Vault word (ForbiddenByRbac, ...); anything else is not ours to repeat.
        return code if isinstance(code, str) and _WORD.fullmatch(code) else None
    return None


_WORD = re.compile(r"[A-Za-z]{1,64}")
#: Key Vault's inner codes and message phrases for each kind of 403: RBAC denial, access-policy vault, and network
#: denial (ForbiddenByConnection / ForbiddenByFirewall, as quoted in public reports such as microsoft/multimodal-ai#171
#: and hashicorp/terraform-provider-azurerm#20742).
_NETWORK_CODES = frozenset({"ForbiddenByConnection", "ForbiddenByFirewall", "ForbiddenByPolicy"})
_NETWORK_PHRASES = (
    "public network access is disabled",
    "client address is not authorized",
    "approved private link",
    "not from a trusted service",
)


def _forbidden_reason(inner_code: str | None, message: str) -> str:
    """``rbac``, ``accessPolicy``, ``network`` or ``unknown``: each 403 needs a different fix."""
    lowered = message.lower()
    if inner_code in _NETWORK_CODES or any(phrase in lowered for phrase in _NETWORK_PHRASES):
        return "network"
    if inner_code == "ForbiddenByRbac" or "deniedwithnovalidrbac" in lowered:
        return "rbac"
    if inner_code == "AccessDenied" or "does not have secrets get permission" in lowered:
        return "accessPolicy"
    return "unknown"


def _forbidden(exc: Exception, where: str, inner_code: str | None, details: dict[str, Any]) -> KeyVaultForbidden:
    """One stable code; the message and ``reason`` say which fix applies (the vault owner does all three)."""
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None)
    reason = _forbidden_reason(inner_code, message if isinstance(message, str) else "")
    details = {**details, "reason": reason}
    if inner_code:
        details["keyVaultInnerCode"] = inner_code
    fixes = {
        "rbac": f"the vault uses Azure RBAC and the managed identity has no role that reads {where}: assign it "
        f"{KEY_VAULT_SECRETS_USER_ROLE} on the vault or the secret (assignments take a few minutes to apply)",
        "accessPolicy": f"the vault uses access policies and none lets the managed identity read {where}: add an "
        "access policy with the 'get' secret permission for it, or switch the vault to the Azure RBAC permission "
        f"model and assign {KEY_VAULT_SECRETS_USER_ROLE}",
        "network": f"the vault's network rules refuse this app while reading {where} (public network access "
        "disabled, or the firewall does not admit its address): give the app a private endpoint it reaches (VNet "
        "integration and the privatelink.vaultcore.azure.net DNS zone), or allow its outbound addresses or subnet "
        "in the vault's firewall; a role assignment does not help",
        "unknown": f"Key Vault refused to let the managed identity read {where} (HTTP 403): assign it "
        f"{KEY_VAULT_SECRETS_USER_ROLE} (RBAC vaults) or a 'get' secret access policy (access-policy vaults), and "
        "check the vault's network rules (public access, firewall, private endpoint)",
    }
    return KeyVaultForbidden(fixes[reason], details=details)


def _refuse_empty(value: str, where: str) -> None:
    """An empty value is never pushed: under Graph's merging PUT it would delete the credential."""
    if not value.strip():
        raise KeyVaultSecretEmpty(
            f"the current version of {where} is empty or only whitespace: it is never pushed (Graph would take an "
            "empty value as deleting the key); add a new version with the real value"
        )


def _deadline_retry_policy(settings: RetrySettings) -> Any:
    """azure-core's ``RetryPolicy`` bounded by the invocation deadline passed per call.

    Without it a ``Retry-After`` of minutes would be slept through even when the invocation has
    seconds left; with it such a wait fails at once as ``DeadlineExceeded`` (retryable). See
    ``shared.core.retry.deadline_retry_policy_class`` for what else it changes.
    """
    return deadline_retry_policy_class(settings, "a Key Vault request")()


class SecretResolver:
    """Per invocation: each distinct secret is read once, all of them concurrently.

    ``prefetch`` starts every read at once on the invocation's executor; ``get`` waits for one.
    ``refresh`` reads again, for a target whose last push used values read after these were.
    """

    def __init__(
        self,
        readers: Callable[[str], SecretReader],
        names: dict[SecretRef, str],
        deadline: Deadline,
        redactor: Redactor,
        executor: Executor,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._readers = readers
        self._names = names
        self._deadline = deadline
        self._redactor = redactor
        self._executor = executor
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._futures: dict[SecretRef, Future[ResolvedSecret]] = {}
        self._lock = Lock()

    def prefetch(self, refs: Iterable[SecretRef]) -> None:
        """Queue the reads in the order given: the order the targets need them, so the first targets start first."""
        for ref in refs:
            self._future(ref)

    def get(self, ref: SecretRef) -> ResolvedSecret:
        return self._future(ref).result()

    def refresh(self, ref: SecretRef) -> ResolvedSecret:
        """Read again in the calling thread (never queued behind the reads it would wait for)."""
        resolved = self._read(ref)
        done: Future[ResolvedSecret] = Future()
        done.set_result(resolved)
        with self._lock:
            self._futures[ref] = done
        return resolved

    def _future(self, ref: SecretRef) -> Future[ResolvedSecret]:
        with self._lock:
            if ref not in self._futures:
                self._futures[ref] = self._executor.submit(self._read, ref)
            return self._futures[ref]

    def _read(self, ref: SecretRef) -> ResolvedSecret:
        resolved = self._readers(ref.vault).read_current(ref, self._names[ref], self._deadline, self._now)
        self._redactor.add([resolved.value])
        return resolved
