"""One error hierarchy for the whole product.

Every failure the product can report is a ``SyncError`` subclass with a stable ``code``. The class
decides, once, how the failure is treated everywhere: the HTTP status it maps to when it is the
reason a request failed, whether retrying can help, and the log level. Messages are written by us
and never contain secret values; anything taken from a remote error body passes through a redactor
first (see ``shared.core.redaction``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar


class SyncError(Exception):
    """Base of every error the product reports.

    ``code`` is stable and documented in the README with what to do about it.
    """

    code: ClassVar[str] = "InternalError"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    log_level: ClassVar[int] = logging.ERROR

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` object of responses and results."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "retryable": self.retryable}
        body.update(self.details)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def scrubbed(self, scrub: Callable[[str], str]) -> SyncError:
        """This error with ``scrub`` applied to its text again (in place).

        For a failure that happened before the redactor knew every value (a read started before the
        credentials were resolved): it is scrubbed once more when it surfaces.
        """
        self.message = scrub(self.message)
        self.args = (self.message,)
        self.details = {k: scrub(v) if isinstance(v, str) else v for k, v in self.details.items()}
        return self


# --- Configuration (server side) -------------------------------------------------------------


class ConfigInvalid(SyncError):
    """``SYNC_CONFIG`` is missing or invalid. A redeploy fixes it, so event deliveries are retried."""

    code = "ConfigInvalid"
    http_status = 500
    retryable = True  # for Event Grid: redelivery succeeds once the config is fixed

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            "SYNC_CONFIG is invalid: " + "; ".join(self.problems),
            details={"problems": self.problems},
        )


# --- Caller input -------------------------------------------------------------------------------


class RequestInvalid(SyncError):
    """The HTTP body is not a valid sync request."""

    code = "RequestInvalid"
    http_status = 400
    log_level = logging.WARNING


class RequestTooLarge(SyncError):
    code = "RequestTooLarge"
    http_status = 413
    log_level = logging.WARNING


class EventInvalid(SyncError):
    """An Event Grid / CloudEvents delivery that cannot be read. Retrying cannot help."""

    code = "EventInvalid"
    http_status = 400
    log_level = logging.ERROR


class UnknownTarget(SyncError):
    code = "UnknownTarget"
    http_status = 404
    log_level = logging.WARNING


class UnknownSecret(SyncError):
    code = "UnknownSecret"
    http_status = 404
    log_level = logging.WARNING


# --- Per-target failures: non-retryable (422) ----------------------------------------------------


class TargetFailure(SyncError):
    """A failure that belongs to one target. Non-retryable ones make the invocation answer 422."""

    http_status = 422


class KeyVaultSecretNotFound(TargetFailure):
    code = "KeyVaultSecretNotFound"


class KeyVaultSecretDisabled(TargetFailure):
    code = "KeyVaultSecretDisabled"


class KeyVaultSecretExpired(TargetFailure):
    code = "KeyVaultSecretExpired"


class KeyVaultSecretNotYetValid(TargetFailure):
    code = "KeyVaultSecretNotYetValid"


class KeyVaultSecretEmpty(TargetFailure):
    """The current version's value is empty or only whitespace.

    Under Graph's merging PUT an empty value deletes the key, so it would silently remove a credential
    from the job: it is refused before anything is sent to Graph.
    """

    code = "KeyVaultSecretEmpty"


class KeyVaultForbidden(TargetFailure):
    """Key Vault answered 403. ``details["reason"]`` says which kind, since each needs a different fix:
    ``rbac`` (a role assignment), ``accessPolicy`` (an access policy, or switch the vault to RBAC),
    ``network`` (the vault's firewall or private endpoint), ``unknown``."""

    code = "KeyVaultForbidden"


class KeyVaultRequestFailed(TargetFailure):
    code = "KeyVaultRequestFailed"


class ManagedIdentityFailed(TargetFailure):
    code = "ManagedIdentityFailed"


class SignInRequired(TargetFailure):
    """The operator CLI found no usable Azure sign-in on this machine (``--credential default``)."""

    code = "SignInRequired"


class GraphUnauthorized(TargetFailure):
    code = "GraphUnauthorized"


class GraphForbidden(TargetFailure):
    code = "GraphForbidden"


class ServicePrincipalNotFound(TargetFailure):
    code = "ServicePrincipalNotFound"


class SyncJobNotFound(TargetFailure):
    code = "SyncJobNotFound"


class SyncJobAmbiguous(TargetFailure):
    code = "SyncJobAmbiguous"


class CredentialsRejected(TargetFailure):
    """validateCredentials did not answer 2xx: the credentials are not pushed.

    ``details["reason"]``: ``rejected`` (the target application answered 401: the credentials are wrong) or
    ``notValidated`` (another answer). The target being unreachable is ``TargetApplicationUnreachable``.
    """

    code = "CredentialsRejected"


class GraphRequestFailed(TargetFailure):
    code = "GraphRequestFailed"


class LedgerForbidden(TargetFailure):
    """The identity may not use the ledger's container (a missing Storage Blob Data role)."""

    code = "LedgerForbidden"


# --- Per-target failures: retryable (503) ---------------------------------------------------------


class TransientFailure(TargetFailure):
    """Retrying later can help: throttling, outages, timeouts. Makes the invocation answer 503."""

    http_status = 503
    retryable = True
    log_level = logging.WARNING


class ManagedIdentityUnavailable(TransientFailure):
    code = "ManagedIdentityUnavailable"


class KeyVaultThrottled(TransientFailure):
    code = "KeyVaultThrottled"


class KeyVaultUnavailable(TransientFailure):
    code = "KeyVaultUnavailable"


class GraphThrottled(TransientFailure):
    code = "GraphThrottled"


class GraphUnavailable(TransientFailure):
    code = "GraphUnavailable"


class TargetApplicationUnreachable(TransientFailure):
    """validateCredentials: the provisioning service could not reach the target application
    (``...CredentialValidationUnavailable``: DNS, network, an outage). Nothing was pushed; it may pass later."""

    code = "TargetApplicationUnreachable"


class GraphAnswerUnreadable(TransientFailure):
    """A read was answered with a body Graph does not send (empty, not JSON, an HTML page): something between
    us and Graph answered. Never taken as "nothing there" (an empty list of stored secrets would drop the keys
    carried along), nothing is pushed; retryable, as a gateway's page usually is."""

    code = "GraphAnswerUnreadable"


class DeadlineExceeded(TransientFailure):
    code = "DeadlineExceeded"


class TargetBusy(TransientFailure):
    """Another sync of the same target (in any instance, with the durable ledger) held its lock past the deadline."""

    code = "TargetBusy"


class LedgerUnavailable(TransientFailure):
    """The ledger in Azure Storage could not be read, locked or written (outage, throttling, a lost lease).

    Nothing is pushed without the lock, so retrying later is the only safe answer.
    """

    code = "LedgerUnavailable"


class KeyVaultVersionBehind(TransientFailure):
    """Key Vault still served a version older than one already pushed (a lagging read): never pushed backwards."""

    code = "KeyVaultVersionBehind"


class SyncPaused(TransientFailure):
    """``SYNC_PAUSED`` is on: nothing is pushed. Retryable, so Event Grid keeps the events until unpaused."""

    code = "SyncPaused"


class InternalFailure(TransientFailure):
    """A bug or an unclassified fault in one target. Retryable, so an event is delivered again after a fix."""

    code = "InternalError"
    log_level = logging.ERROR


class RetryableSyncFailure(Exception):
    """Raised out of the Event Grid trigger so that the runtime and Event Grid deliver again.

    Deliberately not a ``SyncError``: it is the trigger's signal, not a target's outcome. Its text
    lists codes and target names only.
    """
