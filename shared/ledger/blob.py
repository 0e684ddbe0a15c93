"""The durable ledger: one JSON blob per target in the function app's own storage account.

The lock is a **blob lease** on the target's record blob: acquired before a sync checks its values,
renewed in the background while a slow call runs, released when the push is answered, and left to
expire (15 s by default) if the process dies, so the next sync proceeds on its own. Record writes
carry the lease and the ETag read with it (``If-Match``): a writer that lost its lease, or raced
another writer, fails or merges (``records.newer_of``) instead of losing an update.

Storage is the one the Functions host already uses (``AzureWebJobsStorage``): a connection string
locally (Azurite), ``AzureWebJobsStorage__blobServiceUri`` with the managed identity in Azure. Calls
are bounded by the invocation deadline and retried like every other hop (``shared.core.retry``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ..core.errors import DeadlineExceeded, LedgerForbidden, LedgerUnavailable, SyncError, TargetBusy
from ..core.retry import RETRYABLE_STATUSES, Deadline, RetrySettings, deadline_retry_policy_class, deadline_scope
from .base import Ledger, TargetHold
from .records import LedgerRecord, newer_of

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

    from ..clients.identity import TokenProvider
    from ..core.config import Target

STORAGE_SETTING = "AzureWebJobsStorage"
CONTAINER_SETTING = "SYNC_LEDGER_CONTAINER"
LEASE_SETTING = "SYNC_LEDGER_LEASE_SECONDS"
DEFAULT_CONTAINER = "sync-ledger"
DEFAULT_LEASE_SECONDS = 15  # Blob Storage's shortest lease: a dead holder delays the next sync the least
#: Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
BLOB_ROLE_HELP = (
    "grant the Function App's identity Storage Blob Data Contributor (ba92f5b4-2d11-453d-a403-e96b0029c9fe) or "
    "Owner on the storage account that AzureWebJobsStorage names"
)


def storage_configured(environ: Mapping[str, str]) -> bool:
    """Whether the app has storage of its own (then the durable ledger is used)."""
    return bool(
        environ.get(STORAGE_SETTING, "").strip()
        or environ.get(f"{STORAGE_SETTING}__blobServiceUri", "").strip()
        or environ.get(f"{STORAGE_SETTING}__serviceUri", "").strip()
        or environ.get(f"{STORAGE_SETTING}__accountName", "").strip()
    )


def container_name(environ: Mapping[str, str]) -> str:
    return environ.get(CONTAINER_SETTING, "").strip() or DEFAULT_CONTAINER


def lease_seconds(environ: Mapping[str, str]) -> int:
    try:
        return min(max(int(environ.get(LEASE_SETTING, DEFAULT_LEASE_SECONDS)), 15), 60)
    except ValueError:
        return DEFAULT_LEASE_SECONDS


class BlobLedger(Ledger):
    """Built once per worker process; thread-safe (the SDK clients are)."""

    durable = True

    def __init__(
        self,
        container: ContainerClient,
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        settings: RetrySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._container = container
        self._settings = settings or RetrySettings()
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._container_checked = threading.Event()
        self.description = f"Azure Blob Storage, container '{container.container_name}'"
        #: Releases go out after the sync's result is final, off the critical path (a lost one expires).
        self._releases = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lease-release")
        self._pending: set[Future[None]] = set()
        self._pending_lock = threading.Lock()

    def release_later(self, release: Callable[[], None]) -> None:
        future = self._releases.submit(_quietly, release)
        with self._pending_lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._pending_lock:
            self._pending.discard(future)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait for the releases still on their way (tests and benches count them)."""
        with self._pending_lock:
            pending = list(self._pending)
        wait(pending, timeout=timeout)

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        settings: RetrySettings,
        credential_factory: Callable[[str | None], TokenProvider],
        pool_size: int,
    ) -> BlobLedger:
        """The ledger in ``AzureWebJobsStorage``'s account: connection string or identity-based settings.

        ``credential_factory(client_id)`` gives the token provider for identity-based connections
        (``AzureWebJobsStorage__credential=managedidentity`` with an optional ``__clientId``).
        """
        from azure.core.pipeline.transport import RequestsTransport
        from azure.storage.blob import BlobServiceClient

        from ..clients.http_session import pooled_session

        options: dict[str, Any] = {
            "transport": RequestsTransport(
                session=pooled_session(pool_size),
                session_owner=False,
                connection_timeout=settings.connect_timeout,
                read_timeout=settings.read_timeout,
            ),
            "retry_policy": _storage_retry_policy(settings),
            "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.read_timeout,
        }
        connection = environ.get(STORAGE_SETTING, "").strip()
        if connection:
            if connection.lower().replace(" ", "") == "usedevelopmentstorage=true":
                connection = DEVELOPMENT_STORAGE
            service = BlobServiceClient.from_connection_string(connection, **options)
        else:
            prefix = f"{STORAGE_SETTING}__"
            url = environ.get(prefix + "blobServiceUri", "").strip() or environ.get(prefix + "serviceUri", "").strip()
            if not url:
                url = f"https://{environ.get(prefix + 'accountName', '').strip()}.blob.core.windows.net"
            client_id = environ.get(prefix + "clientId", "").strip() or None
            service = BlobServiceClient(account_url=url, credential=credential_factory(client_id), **options)
        return cls(
            service.get_container_client(container_name(environ)),
            lease_seconds=lease_seconds(environ),
            settings=settings,
        )

    # --- Ledger ------------------------------------------------------------------------------------

    def _blob(self, target: Target) -> BlobClient:
        return self._container.get_blob_client(f"targets/{target.name}.json")

    def hold(self, target: Target, deadline: Deadline, abandon: threading.Event | None = None) -> BlobHold:
        """Lease the target's record blob, waiting while another sync holds it; then read the record."""
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._blob(target)
        contended = False
        pause = 0.1
        while True:
            try:
                with deadline_scope(deadline):
                    lease = blob.acquire_lease(
                        lease_duration=self.lease_seconds, timeout=self._server_timeout(deadline)
                    )
                break
            except ResourceNotFoundError as missing:
                self._create(blob, missing, deadline)
            except SyncError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified once, below
                if _error_code(exc) != "LeaseAlreadyPresent":
                    raise self._classify(exc, f"locking target '{target.name}'", deadline) from None
                contended = True
                wait = random.uniform(pause / 2, pause)  # jitter: waiting instances do not ask in lockstep
                if wait >= deadline.remaining() or (abandon is not None and abandon.wait(wait)):
                    raise TargetBusy(
                        f"another sync of target '{target.name}' (in this or another instance) held its ledger lock "
                        "when the deadline passed"
                    ) from None
                pause = min(pause * 2, 1.0)
        acquired_at = self._clock()
        try:
            record, etag = self._download(blob, target, deadline, lease)
        except BaseException:
            _quietly(lease.release)
            raise
        return BlobHold(self, blob, lease, record, etag, acquired_at, contended, target)

    def read(self, target: Target, deadline: Deadline) -> LedgerRecord:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._download(self._blob(target), target, deadline, None)[0]
        except ResourceNotFoundError:
            return LedgerRecord.empty(target.name, target.service_principal_id)

    # --- Plumbing ---------------------------------------------------------------------------------

    def _download(
        self, blob: BlobClient, target: Target, deadline: Deadline, lease: BlobLeaseClient | None
    ) -> tuple[LedgerRecord, str]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            with deadline_scope(deadline):
                stream = blob.download_blob(lease=lease, timeout=self._server_timeout(deadline))
                data = stream.readall()
        except ResourceNotFoundError:
            raise
        except SyncError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._classify(exc, f"reading the record of target '{target.name}'", deadline) from None
        return LedgerRecord.from_bytes(data, target.name, target.service_principal_id), stream.properties.etag

    def _create(self, blob: BlobClient, missing: Exception, deadline: Deadline) -> None:
        """First sync of a target (or of the container): create the empty record, never over another's."""
        from azure.core.exceptions import ResourceExistsError

        if _error_code(missing) == "ContainerNotFound" or not self._container_checked.is_set():
            try:
                with deadline_scope(deadline):
                    self._container.create_container(timeout=self._server_timeout(deadline))
            except ResourceExistsError:
                pass
            except SyncError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._classify(exc, "creating the ledger container", deadline) from None
            self._container_checked.set()
        try:
            from azure.storage.blob import ContentSettings

            with deadline_scope(deadline):
                blob.upload_blob(
                    LedgerRecord.empty(blob.blob_name, "").to_bytes(),  # not b"": an empty blob costs two reads
                    overwrite=False,
                    content_settings=ContentSettings(content_type="application/json"),
                    timeout=self._server_timeout(deadline),
                )
        except ResourceExistsError:
            pass  # created by another sync meanwhile
        except SyncError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._classify(exc, "creating a target's record", deadline) from None

    def _server_timeout(self, deadline: Deadline | None) -> int:
        """Storage's server-side timeout (whole seconds) for one call."""
        ceiling = self._settings.read_timeout
        return max(1, int(deadline.timeout(ceiling) if deadline is not None else ceiling))

    def _classify(self, exc: Exception, doing: str, deadline: Deadline | None) -> SyncError:
        from azure.core.exceptions import ClientAuthenticationError

        status = getattr(getattr(exc, "response", None), "status_code", None)
        code = _error_code(exc)
        details: dict[str, Any] = {"httpStatus": status} if status else {}
        if code:
            details["storageErrorCode"] = code[:100]
        if deadline is not None and deadline.expired:
            return DeadlineExceeded(f"the invocation deadline passed while {doing} in the ledger")
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return LedgerForbidden(
                f"the ledger refused {doing} (HTTP {status}{f', {code}' if code else ''}): {BLOB_ROLE_HELP}; "
                "nothing was pushed",
                details=details,
            )
        said = f"HTTP {status}{f', {code}' if code else ''}" if status else type(exc).__name__
        transient = status is None or status in RETRYABLE_STATUSES
        return LedgerUnavailable(
            f"the ledger in Azure Storage {'did not answer' if transient else 'refused'} {doing} ({said}); "
            "nothing was pushed; retry later",
            details=details,
        )


class BlobHold(TargetHold):
    """A leased record blob; a daemon thread renews the lease every third of its duration."""

    def __init__(
        self,
        ledger: BlobLedger,
        blob: BlobClient,
        lease: BlobLeaseClient,
        record: LedgerRecord,
        etag: str,
        acquired_at: float,
        contended: bool,
        target: Target,
    ) -> None:
        super().__init__(record, acquired_at, contended)
        self._ledger = ledger
        self._blob = blob
        self._lease = lease
        self._etag = etag
        self._target = target
        self._confirmed_at = acquired_at
        self._lost: str | None = None
        self._done = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"lease-{target.name}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        interval = self._ledger.lease_seconds / 3
        while not self._done.wait(interval):
            try:
                self._lease.renew(timeout=max(1, int(interval)))
                self._confirmed_at = self._ledger._clock()
            except Exception as exc:  # noqa: BLE001 - a failed renewal only matters if the lease runs out
                if _error_code(exc) in _LEASE_GONE:
                    self._lost = _error_code(exc)
                    return

    def ensure_held(self, doing: str) -> None:
        """Refuse to go on when the lease is lost or may run out before ``doing`` is answered."""
        margin = min(2.0, self._ledger.lease_seconds / 5)
        left = self._confirmed_at + self._ledger.lease_seconds - self._ledger._clock()
        if self._lost or left <= margin:
            raise LedgerUnavailable(
                f"the ledger lock of target '{self._target.name}' was lost before {doing} "
                f"({self._lost or 'the lease could not be renewed'}); nothing was pushed; retry later"
            )

    def save(self, record: LedgerRecord) -> None:
        """``If-Match`` the ETag read with the lease; after a conflict, merge with what is stored and write again."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.storage.blob import ContentSettings

        for _ in range(3):
            try:
                result = self._blob.upload_blob(
                    record.to_bytes(),
                    overwrite=True,
                    lease=self._lease,
                    etag=self._etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=ContentSettings(content_type="application/json"),
                    timeout=self._ledger._server_timeout(None),
                )
            except ResourceModifiedError:
                stored, self._etag = self._ledger._download(self._blob, self._target, _patience(), self._lease)
                record = newer_of(record, stored)
                continue
            except SyncError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise self._ledger._classify(exc, f"writing the record of target '{self._target.name}'", None) from None
            self._etag = result["etag"]
            self.record = record
            return
        raise LedgerUnavailable(f"the record of target '{self._target.name}' kept changing under its lease")

    def release(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        if not self.keep_lock:
            self._ledger.release_later(lambda: self._lease.release(timeout=5))


def _storage_retry_policy(settings: RetrySettings) -> Any:
    """The deadline-bounded retry policy every hop uses, taking the options Storage's own policy would take.

    azure-storage-blob's pipeline puts its secondary-host options on each request for its
    ``StorageRetryPolicy``; with another policy in its place they would reach the transport. This
    app only ever uses the primary endpoint, so they are dropped, and every response is marked as
    the primary's (``location_mode``, which Storage's deserializers read).
    """
    base = deadline_retry_policy_class(settings, "a ledger request")

    class StorageDeadlineRetryPolicy(base):  # type: ignore[misc, valid-type]
        def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
            for name in ("hosts", "retry_to_secondary", "location_mode", "retry_hook"):
                options.pop(name, None)
            return super().configure_retries(options)

        def send(self, request: Any) -> Any:
            response = super().send(request)
            response.http_response.location_mode = "primary"
            return response

    return StorageDeadlineRetryPolicy()


#: Renewal answers that mean the lease is gone for good (broken by an operator, or expired and taken).
_LEASE_GONE = frozenset({"LeaseIdMismatchWithLeaseOperation", "LeaseLost", "LeaseNotPresentWithLeaseOperation"})


def _patience() -> Deadline:
    return Deadline(30.0)


def _error_code(exc: Exception) -> str | None:
    code = getattr(exc, "error_code", None)
    if code is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    return str(code) if code else None


def _quietly(action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception:  # noqa: BLE001 - best effort: an unreleased lease expires by itself
        pass
