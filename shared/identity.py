"""Tokens for Graph and Key Vault, with credential failures turned into typed errors.

``TokenProvider`` wraps a real azure-identity credential (``ManagedIdentityCredential`` in Azure,
``DefaultAzureCredential`` for the operator CLI on a laptop). Both the Key Vault SDK and our Graph
client call it, so a broken identity gives the same error code on every hop. The credential caches
tokens until five minutes before expiry; it is built once per worker process and reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ManagedIdentityFailed, ManagedIdentityUnavailable, SyncError
from .retry import RETRYABLE_STATUSES, RetrySettings

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential


class TokenProvider:
    """A ``TokenCredential`` that reports failures as ``SyncError`` subclasses."""

    def __init__(self, credential: TokenCredential, description: str) -> None:
        self._credential = credential
        self.description = description

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return self._credential.get_token(*scopes, **kwargs)
        except SyncError:
            raise
        except Exception as exc:  # noqa: BLE001 - every credential failure is classified here, once
            raise self._classify(exc, scopes) from None

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
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

    def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()

    def _classify(self, exc: Exception, scopes: tuple[str, ...]) -> SyncError:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        scope = scopes[0] if scopes else "?"
        status = getattr(getattr(exc, "response", None), "status_code", None)
        name = type(exc).__name__
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)) or status in RETRYABLE_STATUSES:
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

    credential = ManagedIdentityCredential(
        client_id=client_id,
        retry_total=settings.max_attempts - 1,
        retry_backoff_factor=settings.backoff_base,
        retry_backoff_max=settings.backoff_max,
        connection_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
    kind = "user-assigned managed identity" if client_id else "system-assigned managed identity"
    return TokenProvider(credential, kind)


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
    return TokenProvider(credential, "Azure credential (DefaultAzureCredential)")
