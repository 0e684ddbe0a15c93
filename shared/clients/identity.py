"""Tokens for Graph and Key Vault, with credential failures turned into typed errors.

``TokenProvider`` wraps a real azure-identity credential (``ManagedIdentityCredential`` in Azure,
``DefaultAzureCredential`` for the operator CLI on a laptop). Both the Key Vault SDK and our Graph
client call it, so a broken identity gives the same error code on every hop. The credential caches
tokens until five minutes before expiry; it is built once per worker process and reused.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..core.errors import (
    DeadlineExceeded,
    ManagedIdentityFailed,
    ManagedIdentityUnavailable,
    SignInRequired,
    SyncError,
)
from ..core.retry import RETRYABLE_STATUSES, RetrySettings, current_deadline, deadline_retry_policy_class

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential


class _Flight:
    """One credential call in progress, and how it ended."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: SyncError | None = None


class TokenProvider:
    """A ``TokenCredential`` that reports failures as ``SyncError`` subclasses."""

    def __init__(self, credential: TokenCredential, description: str) -> None:
        self._credential = credential
        self.description = description
        self._flights: dict[tuple[str, ...], _Flight] = {}
        self._flights_lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._single_flight(scopes):
            try:
                return self._credential.get_token(*scopes, **kwargs)
            except SyncError:
                raise
            except Exception as exc:  # noqa: BLE001 - every credential failure is classified here, once
                raise self._classify(exc, scopes) from None

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        with self._single_flight(scopes):
            try:
                get_info = getattr(self._credential, "get_token_info", None)
                if get_info is not None:
                    return get_info(*scopes, options=options)
                from azure.core.credentials import AccessTokenInfo

                token = self._credential.get_token(*scopes)
                return AccessTokenInfo(token.token, token.expires_on)
            except SyncError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._classify(exc, scopes) from None

    @contextmanager
    def _single_flight(self, scopes: tuple[str, ...]) -> Iterator[None]:
        """One credential call per scope at a time: callers that arrive meanwhile wait for it.

        The credential caches tokens but does not coalesce concurrent misses, so the first fan-out
        of a worker process (every target, every Key Vault read at once) would send one token request
        per thread. Waiting callers then find the token in the cache; when the call failed, they fail
        with the same error instead of asking a failing endpoint again (unless the error was the
        caller's own deadline: another invocation may have time left).
        """
        with self._flights_lock:
            flight = self._flights.get(scopes)
            leader = flight is None
            if flight is None:
                flight = self._flights[scopes] = _Flight()
        if not leader:
            deadline = current_deadline()
            if not flight.done.wait(timeout=deadline.remaining() if deadline is not None else None):
                raise DeadlineExceeded(f"the invocation deadline passed while waiting for a token for {scopes[0]}")
            error = flight.error
            if error is not None and not isinstance(error, DeadlineExceeded):
                raise copy.copy(error)
            yield
            return
        try:
            yield
        except SyncError as error:
            flight.error = error
            raise
        finally:
            with self._flights_lock:
                del self._flights[scopes]
            flight.done.set()

    def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()

    def _classify(self, exc: Exception, scopes: tuple[str, ...]) -> SyncError:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        scope = scopes[0] if scopes else "?"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        name = type(exc).__name__
        transient = isinstance(exc, (ServiceRequestError, ServiceResponseError)) or status in RETRYABLE_STATUSES
        deadline = current_deadline()
        if transient and deadline is not None and deadline.expired:
            return DeadlineExceeded(f"the invocation deadline passed while getting a token for {scope}")
        if isinstance(exc, ValueError) and not isinstance(exc, SyncError):
            # A 2xx whose body is not a token (JSON): a gateway's page, an empty answer. Not a refusal.
            return ManagedIdentityUnavailable(
                f"the {self.description} endpoint answered the token request for {scope} with a body that is not a "
                f"token ({name}): a gateway or proxy may have answered; retry later"
            )
        if transient:
            return ManagedIdentityUnavailable(
                f"the {self.description} endpoint did not issue a token for {scope} "
                f"({name}{f', HTTP {status}' if status else ''}); retry later",
                details={"httpStatus": status} if status else None,
            )
        if name == "CredentialUnavailableError":
            return ManagedIdentityFailed(
                f"no {self.description} is available in this environment ({name}): enable a managed identity "
                "on the Function App, or for the CLI sign in with 'az login'"
            )
        return ManagedIdentityFailed(
            f"the {self.description} refused to issue a token for {scope} ({name}"
            f"{f', HTTP {status}' if status else ''}): check that managedIdentityClientId names a user-assigned "
            "identity attached to this Function App (or omit it for the system-assigned identity)",
            details={"httpStatus": status} if status else None,
        )


def managed_identity_provider(client_id: str | None, settings: RetrySettings) -> TokenProvider:
    """``ManagedIdentityCredential`` with a bounded retry policy.

    azure-identity's default (10 retries, backoff up to 120 s) can outlast the function timeout;
    these bounds keep the token hop inside the invocation deadline. ``client_id`` is passed
    explicitly because ``ManagedIdentityCredential`` ignores ``AZURE_CLIENT_ID``.
    """
    from azure.identity import ManagedIdentityCredential

    kind = "user-assigned managed identity" if client_id else "system-assigned managed identity"
    extra: dict[str, Any] = {}
    if _app_service_identity():
        # The Functions flavour: our policy replaces azure-identity's RetryPolicy (see _identity_retry_policy_class).
        # Other flavours keep their own policy class (IMDS passes one itself), bounded by the arguments below.
        extra["retry_policy_class"] = _identity_retry_policy_class(settings, kind)
    credential = ManagedIdentityCredential(
        client_id=client_id,
        retry_total=settings.max_attempts - 1,
        retry_backoff_factor=settings.backoff_base,
        retry_backoff_max=settings.backoff_max,
        connection_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        **extra,
    )
    return TokenProvider(credential, kind)


def _app_service_identity() -> bool:
    """Whether ``ManagedIdentityCredential`` will use the App Service endpoint (what Azure Functions provides)."""
    return bool(
        os.environ.get("IDENTITY_ENDPOINT")
        and os.environ.get("IDENTITY_HEADER")
        and not os.environ.get("IDENTITY_SERVER_THUMBPRINT")
    )


def _identity_retry_policy_class(settings: RetrySettings, kind: str) -> type[Any]:
    """The retry policy of the managed-identity token request: the invocation deadline applies here too.

    azure-identity runs the request through msal, which turns a failed App Service answer into a
    ``CredentialUnavailableError`` that carries no status (a throttled or failing endpoint would read
    as "no managed identity here", a permanent failure) and caches a 429/5xx answer for 5 s or its
    ``Retry-After``. So all retrying happens in this policy, below msal's cache, bounded by the deadline
    (``shared.core.retry.deadline_scope``); a failed final answer is raised as our own error instead of
    being handed to msal: retryable for 429/5xx, permanent for the rest.
    """
    base = deadline_retry_policy_class(settings, f"getting a token from the {kind}")

    class IdentityRetryPolicy(base):  # type: ignore[misc, valid-type]
        def is_retry(self, settings_: dict[str, Any], response: Any) -> bool:
            # Right after a deployment the endpoint has answered 403 with an empty body for a while
            # (azure-sdk-for-net #30467): retried like a 5xx, within the same bound, before it counts as refused.
            if _transient_forbidden(response.http_response):
                return bool(settings_["total"])
            return super().is_retry(settings_, response)

        def send(self, request: Any) -> Any:
            response = super().send(request)
            status = response.http_response.status_code
            if status < 400:
                return response
            resource = request.http_request.query.get("resource", "?")
            if _transient_forbidden(response.http_response):
                raise ManagedIdentityFailed(
                    f"the {kind} endpoint kept answering 403 with an empty body for {resource} "
                    f"({settings.max_attempts} attempts). That happens for a few minutes after a deployment or a "
                    "change of identity; if it persists, check that the managed identity is enabled on this "
                    "Function App (Identity blade) and restart the app",
                    details={"httpStatus": status},
                )
            if status in RETRYABLE_STATUSES:
                raise ManagedIdentityUnavailable(
                    f"the {kind} endpoint did not issue a token for {resource} (HTTP {status}, "
                    f"{settings.max_attempts} attempts); retry later",
                    details={"httpStatus": status},
                )
            raise ManagedIdentityFailed(
                f"the {kind} endpoint refused to issue a token for {resource} (HTTP {status}): "
                + (
                    "check that managedIdentityClientId (or SYNC_MANAGED_IDENTITY_CLIENT_ID) names a user-assigned "
                    "identity attached to this Function App, or omit it to use the system-assigned identity"
                    if status == 400
                    else "check that a managed identity is enabled on this Function App (Identity blade) and restart it"
                ),
                details={"httpStatus": status},
            )

    return IdentityRetryPolicy


def _transient_forbidden(http_response: Any) -> bool:
    """A 403 without a body: what the endpoint answers while the identity is not wired up yet."""
    if http_response.status_code != 403:
        return False
    try:
        return not (http_response.body() or b"").strip()
    except Exception:  # noqa: BLE001 - a body that cannot be read is not the empty one this is about
        return False


class DeveloperTokenProvider(TokenProvider):
    """``DefaultAzureCredential`` for the operator CLI, with failures said the way a person at a laptop needs them.

    Not signed in, the chain raises a 13-line report of every credential it tried, and logs it as a warning
    too, on every call. Here it becomes one ``SignInRequired`` ("sign in with `az login`, or run inside
    Azure"); the warning is not logged (the error says it), and a failure that retrying cannot fix is
    remembered, so the chain is not walked again (and its report not repeated) for every secret and target.
    """

    CHAIN_LOGGER = "azure.identity._credentials.chained"
    _CHAIN_FAILED = "failed to retrieve a token from the included credentials"

    def __init__(self, credential: TokenCredential, description: str) -> None:
        super().__init__(credential, description)
        self._failed: SyncError | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self._raise_remembered()
        with _quiet_chain_report(self.CHAIN_LOGGER, self._CHAIN_FAILED):
            try:
                return super().get_token(*scopes, **kwargs)
            except SyncError as error:
                self._remember(error)
                raise

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self._raise_remembered()
        with _quiet_chain_report(self.CHAIN_LOGGER, self._CHAIN_FAILED):
            try:
                return super().get_token_info(*scopes, options=options)
            except SyncError as error:
                self._remember(error)
                raise

    def _raise_remembered(self) -> None:
        if self._failed is not None:
            raise copy.copy(self._failed)

    def _remember(self, error: SyncError) -> None:
        if not error.retryable:
            self._failed = error

    def _classify(self, exc: Exception, scopes: tuple[str, ...]) -> SyncError:
        text = str(getattr(exc, "message", None) or exc)
        if self._CHAIN_FAILED not in text:
            return super()._classify(exc, scopes)
        cli = _attempt_line(text, "AzureCliCredential")
        if cli and not any(hint in cli.lower() for hint in ("az login", "not found on path", "not installed")):
            # The Azure CLI is signed in but could not get a token (a tenant, a consent, an expired login).
            return SignInRequired(
                f"your Azure CLI sign-in could not get a token for {scopes[0] if scopes else '?'} ({cli[:200]}): "
                "sign in again with `az login` (with --tenant if the app is in another tenant), or run inside Azure"
            )
        return SignInRequired(
            "no Azure sign-in was found: sign in with `az login` (or run inside Azure, where the Function App's "
            "managed identity is used)"
        )


def _attempt_line(report: str, credential: str) -> str | None:
    """One credential's line from DefaultAzureCredential's report of what it tried."""
    for line in report.splitlines():
        stripped = line.strip()
        if stripped.startswith(f"{credential}:"):
            return stripped[len(credential) + 1 :].strip()
    return None


class _ChainReportFilter(logging.Filter):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def filter(self, record: logging.LogRecord) -> bool:
        return self.marker not in str(record.msg)


@contextmanager
def _quiet_chain_report(logger_name: str, marker: str) -> Iterator[None]:
    """Drop the chain's own warning while our call runs: the error we raise says it, once."""
    chain_logger = logging.getLogger(logger_name)
    quiet = _ChainReportFilter(marker)
    chain_logger.addFilter(quiet)
    try:
        yield
    finally:
        chain_logger.removeFilter(quiet)


def developer_provider(settings: RetrySettings, managed_identity_client_id: str | None = None) -> TokenProvider:
    """``DefaultAzureCredential`` for the operator CLI: Azure CLI login on a laptop, managed identity in Azure.

    ``managed_identity_client_id`` picks the user-assigned identity when the chain reaches managed identity.
    """
    from azure.identity import DefaultAzureCredential

    # Passed only when given: an explicit None would also override AZURE_CLIENT_ID.
    extra = {"managed_identity_client_id": managed_identity_client_id} if managed_identity_client_id else {}
    credential = DefaultAzureCredential(
        retry_total=settings.max_attempts - 1,
        retry_backoff_factor=settings.backoff_base,
        retry_backoff_max=settings.backoff_max,
        **extra,
    )
    return DeveloperTokenProvider(credential, "Azure credential (DefaultAzureCredential)")
