"""A small Microsoft Graph client for the synchronization calls, on ``requests``.

Why not the Graph SDK: it pulls in kiota and dozens of modules (seconds of cold start) for six
calls. This client retries 429/5xx/connection faults with ``Retry-After`` or jittered backoff, never
retries 400/401/403/404, shares one throttle gate per Graph endpoint across the fan-out, and keeps
every wait inside the invocation deadline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..core import identifiers
from ..core.errors import (
    CredentialsRejected,
    DeadlineExceeded,
    GraphForbidden,
    GraphRequestFailed,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    ServicePrincipalNotFound,
    SyncError,
    SyncJobAmbiguous,
    SyncJobNotFound,
)
from ..core.redaction import Redactor, SecretValue
from ..core.retry import RETRYABLE_STATUSES, Deadline, RetrySettings, ThrottleGate, deadline_scope, parse_retry_after

if TYPE_CHECKING:
    import requests

    from .identity import TokenProvider

MASKED_VALUE = "*"

GRAPH_PERMISSION_HELP = (
    "grant the managed identity the Microsoft Graph application permission Synchronization.ReadWrite.All "
    "(app role 9b50c33d-700f-43b1-b2eb-87e89b703581), or Application.ReadWrite.OwnedBy "
    "(18a4783c-866b-4cc7-a460-3d5e5662c884) and make the identity an owner of the service principal, with an app "
    "role assignment (POST /servicePrincipals/{managed identity object id}/appRoleAssignments; see README "
    "'Permissions'); the portal cannot grant it"
)


class GraphNoAnswer(GraphUnavailable):
    """No answer arrived (connection reset, timeout): the request may or may not have been carried out."""


@dataclass(frozen=True)
class SyncJob:
    id: str
    template_id: str | None
    status_code: str | None
    quarantine_reason: str | None
    last_successful_run: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SyncJob:
        status = body.get("status") if isinstance(body.get("status"), dict) else {}
        quarantine = status.get("quarantine") if isinstance(status.get("quarantine"), dict) else None
        last = (
            status.get("lastSuccessfulExecution") if isinstance(status.get("lastSuccessfulExecution"), dict) else None
        )
        return cls(
            id=str(body.get("id", "")),
            template_id=body.get("templateId") if isinstance(body.get("templateId"), str) else None,
            status_code=status.get("code") if isinstance(status.get("code"), str) else None,
            quarantine_reason=quarantine.get("reason") if quarantine else None,
            last_successful_run=(last.get("timeEnded") or last.get("timeBegan")) if last else None,
        )

    @property
    def quarantined(self) -> bool:
        return self.status_code == "Quarantine"


@dataclass(frozen=True)
class StoredSecret:
    """A pair from GET .../synchronization/secrets; ``masked`` when Graph shows ``*``."""

    key: str
    value: SecretValue
    masked: bool


@dataclass(frozen=True)
class GraphCall:
    """Who is calling: the per-invocation deadline and the redactor for error text.

    ``unanswered_writes`` collects, for each PUT that got no answer, the moment until which Graph may
    still carry it out (see ``GraphClient.straggler_window``): the pipeline keeps the target until then,
    so such a stray push cannot land after a newer push by the next sync of the same target.
    """

    deadline: Deadline
    redactor: Redactor
    request_ids: list[str]
    unanswered_writes: list[float] = field(default_factory=list)


class GraphClient:
    """Built once per worker process and Graph endpoint; thread-safe."""

    def __init__(
        self,
        endpoint: str,
        api_version: str,
        scope: str,
        credential: TokenProvider,
        settings: RetrySettings,
        pool_size: int,
        gate: ThrottleGate | None = None,
    ) -> None:
        self.base_url = f"{endpoint.rstrip('/')}/{api_version}"
        self.scope = scope
        self._credential = credential
        self._settings = settings
        self._pool_size = pool_size
        self.gate = gate or ThrottleGate()
        self._session: requests.Session | None = None
        self._session_lock = Lock()

    # --- The calls -------------------------------------------------------------------------------

    def list_jobs(self, sp_id: str, call: GraphCall) -> list[SyncJob]:
        body = self._send("GET", self._sp_path(sp_id, "jobs"), "list synchronization jobs", call).json()
        values = body.get("value") if isinstance(body, dict) else None
        return [SyncJob.from_json(j) for j in values or [] if isinstance(j, dict)]

    def only_job(self, sp_id: str, call: GraphCall) -> SyncJob:
        """Discovery when the config names no job: the service principal must have exactly one."""
        jobs = self.list_jobs(sp_id, call)
        if not jobs:
            raise SyncJobNotFound(
                "the service principal has no synchronization job: set up provisioning on the enterprise application "
                "first"
            )
        if len(jobs) > 1:
            raise SyncJobAmbiguous(
                f"the service principal has {len(jobs)} synchronization jobs; set jobId to one of: "
                + ", ".join(j.id for j in jobs),
                details={"jobIds": [j.id for j in jobs]},
            )
        return jobs[0]

    def get_job(self, sp_id: str, job_id: str, call: GraphCall) -> SyncJob:
        return SyncJob.from_json(
            self._send("GET", self._job_path(sp_id, job_id), "get synchronization job", call).json()
        )

    def validate_credentials(
        self,
        sp_id: str,
        job_id: str,
        credentials: Mapping[str, SecretValue],
        template_id: str | None,
        call: GraphCall,
        *,
        use_saved: bool = False,
    ) -> None:
        """Raises ``CredentialsRejected`` unless Graph answers 2xx."""
        body: dict[str, Any] = {"useSavedCredentials": use_saved}
        if not use_saved:
            body["credentials"] = [{"key": k, "value": v.reveal()} for k, v in credentials.items()]
        if template_id:
            body["templateId"] = template_id
        self._send("POST", self._job_path(sp_id, job_id, "validateCredentials"), "validateCredentials", call, body)

    def get_secrets(self, sp_id: str, call: GraphCall) -> list[StoredSecret]:
        body = self._send("GET", self._sp_path(sp_id, "secrets"), "get synchronization secrets", call).json()
        pairs = body.get("value") if isinstance(body, dict) else None
        stored = []
        for pair in pairs or []:
            if isinstance(pair, dict) and isinstance(pair.get("key"), str):
                value = pair.get("value")
                text = value if isinstance(value, str) else ("" if value is None else json.dumps(value))
                stored.append(StoredSecret(pair["key"], SecretValue(text), masked=text == MASKED_VALUE))
        return stored

    def put_secrets(self, sp_id: str, pairs: Mapping[str, SecretValue], call: GraphCall) -> None:
        if any(v.reveal() == MASKED_VALUE for v in pairs.values()):
            raise AssertionError("a masked value must never be sent back to Graph")
        body = {"value": [{"key": k, "value": v.reveal()} for k, v in pairs.items()]}
        self._send("PUT", self._sp_path(sp_id, "secrets"), "put synchronization secrets", call, body)

    def start_job(self, sp_id: str, job_id: str, call: GraphCall) -> bool:
        """POST start, which is not idempotent: Microsoft says not to start a running job.

        An unanswered start may have been carried out, or may still be on its way, so it is never blindly
        sent again: the job is read back until it leaves quarantine or the start had time to land (twice
        the read timeout), and only a job still in quarantine then is started again.
        """
        last: GraphNoAnswer | None = None
        for _ in range(self._settings.max_attempts):
            try:
                self._send(
                    "POST",
                    self._job_path(sp_id, job_id, "start"),
                    "start synchronization job",
                    call,
                    retry_unanswered=False,
                )
                return True
            except GraphNoAnswer as no_answer:
                last = no_answer
                if self._left_quarantine(sp_id, job_id, call):
                    return True
        assert last is not None
        raise last

    @property
    def straggler_window(self) -> float:
        """How long after it was sent an unanswered request is taken to be done or dropped by Graph.

        A request still in Graph's hands when the client gave up (after the read timeout) is assumed
        to have been carried out or abandoned one more read timeout later.
        """
        return 2 * self._settings.read_timeout

    def _left_quarantine(self, sp_id: str, job_id: str, call: GraphCall) -> bool:
        """Read the job back after an unanswered start; a wait past the deadline fails as retryable."""
        patience = self.straggler_window
        interval = max(self._settings.read_timeout / 4, 0.05)
        waited = 0.0
        while self.get_job(sp_id, job_id, call).quarantined:
            if waited >= patience:
                return False
            call.deadline.sleep(interval, "reading the job back after an unanswered start")
            waited += interval
        return True

    # --- Plumbing --------------------------------------------------------------------------------

    def _sp_path(self, sp_id: str, *rest: str) -> str:
        if not identifiers.is_guid(sp_id):
            raise GraphRequestFailed("refused to call Graph: the service principal id is not a GUID")
        return "/".join([f"/servicePrincipals/{sp_id}/synchronization", *rest])

    def _job_path(self, sp_id: str, job_id: str, action: str | None = None) -> str:
        if not identifiers.is_job_id(job_id):
            raise GraphRequestFailed("refused to call Graph: the job id has characters a job id never has")
        path = self._sp_path(sp_id, "jobs", quote(job_id, safe=""))
        return f"{path}/{action}" if action else path

    def session(self) -> requests.Session:
        with self._session_lock:
            if self._session is None:
                from .http_session import pooled_session

                self._session = pooled_session(self._pool_size)
            return self._session

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        call: GraphCall,
        body: dict[str, Any] | None = None,
        *,
        retry_unanswered: bool = True,
    ) -> requests.Response:
        import requests

        deadline = call.deadline
        url = self.base_url + path
        last_error: SyncError | None = None
        for attempt in range(1, self._settings.max_attempts + 1):
            self.gate.wait(deadline, what)
            deadline.check(what)
            with deadline_scope(deadline):  # bounds the managed-identity request behind a token-cache miss
                token = self._credential.get_token(self.scope).token
            client_request_id = str(uuid.uuid4())
            headers = {
                "Authorization": f"Bearer {token}",
                "client-request-id": client_request_id,
                "Accept": "application/json",
            }
            sent_at = time.monotonic()
            try:
                response = self.session().request(
                    method,
                    url,
                    json=body,
                    headers=headers,
                    timeout=(
                        deadline.timeout(self._settings.connect_timeout),
                        deadline.timeout(self._settings.read_timeout),
                    ),
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.gate.passed()  # not a 429: a probe of the throttle gate lets the others go
                last_error = GraphNoAnswer(
                    f"Graph did not answer {what} ({type(exc).__name__}); retry later",
                    details={"clientRequestId": client_request_id},
                )
                if method == "PUT":
                    call.unanswered_writes.append(sent_at + self.straggler_window)
                if deadline.expired:
                    raise DeadlineExceeded(f"the invocation deadline passed during {what}") from None
                if not retry_unanswered:
                    raise last_error from None
                if attempt < self._settings.max_attempts:
                    deadline.sleep(self._settings.backoff(attempt), what)
                continue
            if response.status_code != 429:
                self.gate.passed()  # a probe of the throttle gate got through: the others go too
            request_id = response.headers.get("request-id")
            if request_id:
                call.request_ids.append(call.redactor.scrub(request_id)[:200])
            if 200 <= response.status_code < 300:
                return response
            error = self._error_for(response, what, path, call.redactor)
            if response.status_code not in RETRYABLE_STATUSES:
                raise error
            last_error = error
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code == 429:
                self.gate.close_for(retry_after if retry_after is not None else self._settings.backoff(attempt))
            if response.status_code != 429 and attempt < self._settings.max_attempts:
                # a 429 closed the shared gate instead: the next attempt waits there with everyone else
                deadline.sleep(retry_after if retry_after is not None else self._settings.backoff(attempt), what)
        assert last_error is not None
        raise last_error

    def _error_for(self, response: requests.Response, what: str, path: str, redactor: Redactor) -> SyncError:
        status = response.status_code
        code, message, inner_code = _graph_error(response, redactor)
        details: dict[str, Any] = {"httpStatus": status}
        if code:
            details["graphErrorCode"] = code
        if inner_code:
            details["graphInnerCode"] = inner_code
        request_id = response.headers.get("request-id")
        if request_id:
            details["graphRequestId"] = redactor.scrub(request_id)[:200]
        said = (
            f" Graph said: {code or 'no code'}{f' / {inner_code}' if inner_code else ''}: {message}" if message else ""
        )
        if status == 429:
            return GraphThrottled(f"Graph throttled {what} (HTTP 429); retry later", details=details)
        if status in RETRYABLE_STATUSES:
            return GraphUnavailable(f"Graph failed {what} (HTTP {status}); retry later", details=details)
        if status == 401:
            return GraphUnauthorized(
                f"Graph refused the token for {what} (HTTP 401): the token's cloud must match the Graph endpoint "
                f"(check 'cloud' and 'graph.endpoint').{said}",
                details=details,
            )
        if status == 403:
            return GraphForbidden(f"Graph denied {what} (HTTP 403): {GRAPH_PERMISSION_HELP}.{said}", details=details)
        if status == 404:
            if code == "Request_ResourceNotFound" or "/jobs" not in path:
                return ServicePrincipalNotFound(
                    f"Graph has no such service principal for {what} (HTTP 404): servicePrincipalId must be the "
                    "object id of the enterprise application (not its app id).",
                    details=details,
                )
            return SyncJobNotFound(
                f"the service principal has no such synchronization job for {what} (HTTP 404): fix jobId, or omit "
                "it to discover the only job.",
                details=details,
            )
        if what == "validateCredentials":
            return CredentialsRejected(
                f"validateCredentials rejected the credentials (HTTP {status}); nothing was pushed: check the token "
                f"and the tenant URL in Key Vault / config against the target application.{said}",
                details=details,
            )
        return GraphRequestFailed(f"Graph refused {what} (HTTP {status}).{said}", details=details)


def _graph_error(response: requests.Response, redactor: Redactor) -> tuple[str | None, str, str | None]:
    """Graph's error code, message and a code nested as JSON inside the message (seen in the wild)."""
    try:
        body = response.json()
    except ValueError:
        return None, "", None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, "", None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    inner_code = None
    if message.lstrip().startswith("{"):
        try:
            nested = json.loads(message)
        except ValueError:
            nested = None
        if isinstance(nested, dict):
            inner_code = nested.get("code") if isinstance(nested.get("code"), str) else None
            message = nested.get("message") if isinstance(nested.get("message"), str) else message
    # Everything taken from the answer is scrubbed, codes too: a service may echo what it was sent anywhere.
    return (
        redactor.scrub(code)[:200] if code else None,
        redactor.scrub(message)[:500],
        redactor.scrub(inner_code)[:200] if inner_code else None,
    )
