"""A small Microsoft Graph client for the synchronization calls, on ``requests``.

Why not the Graph SDK: it pulls in kiota and dozens of modules (seconds of cold start) for six
calls. This client retries 429/5xx/connection faults with ``Retry-After`` or jittered backoff, never
retries 400/401/403/404, shares one throttle gate per Graph endpoint across the fan-out, and keeps
every wait inside the invocation deadline.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from threading import BoundedSemaphore, Lock
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..core import identifiers
from ..core.errors import (
    CredentialsRejected,
    DeadlineExceeded,
    GraphAnswerUnreadable,
    GraphForbidden,
    GraphRequestFailed,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    ServicePrincipalNotFound,
    SyncError,
    SyncJobAmbiguous,
    SyncJobNotFound,
    TargetApplicationUnreachable,
)
from ..core.redaction import Redactor, SecretValue
from ..core.retry import RETRYABLE_STATUSES, Deadline, RetrySettings, ThrottleGate, deadline_scope, parse_retry_after

if TYPE_CHECKING:
    import requests

    from .identity import TokenProvider

logger = logging.getLogger("shared.clients.graph")

MASKED_VALUE = "*"

#: The provisioning service's two named failure classes of validateCredentials (quoted in target vendors' KB
#: articles, and reproduced publicly with a tenant URL that does not resolve). Matched by suffix: connectors other
#: than the generic SCIM one carry their own prefix. "Failure": the target application answered 401, the
#: credentials are wrong. "Unavailable": the provisioning service could not reach the target application (DNS,
#: network, outage).
VALIDATION_FAILURE_SUFFIX = "CredentialValidationFailure"
VALIDATION_UNAVAILABLE_SUFFIX = "CredentialValidationUnavailable"
_VALIDATION_CODE_IN_TEXT = re.compile(r"[A-Za-z]*Credential(?:Validation)(?:Failure|Unavailable)\b")
#: Graph documents 409 with this code as transient: "repeat the request after a short delay".
CONCURRENCY_VIOLATION = "Directory_ConcurrencyViolation"
#: The directory's 404 code for an object that does not exist (here: the service principal).
RESOURCE_NOT_FOUND = "Request_ResourceNotFound"
#: Longest remote text we ever put into a message (after scrubbing).
MAX_REMOTE_TEXT = 500
MAX_REMOTE_CODE = 200

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
    #: The Graph token request that already failed for this caller: its later calls fail alike instead of
    #: asking the identity endpoint again (one target's sync overlaps calls; it retries once, not per call).
    token_failures: list[SyncError] = field(default_factory=list)


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
        #: Requests in flight, bounded by the pool: one target's overlapped reads never open extra connections,
        #: and a throttled fan-out has at most this many requests out when the gate closes.
        self._in_flight = BoundedSemaphore(max(pool_size, 1))

    # --- The calls -------------------------------------------------------------------------------

    def list_jobs(self, sp_id: str, call: GraphCall) -> list[SyncJob]:
        what = "list synchronization jobs"
        values = _value_list(self._send("GET", self._sp_path(sp_id, "jobs"), what, call), what)
        return [SyncJob.from_json(j) for j in values if isinstance(j, dict)]

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
        what = "get synchronization job"
        body = _json_body(self._send("GET", self._job_path(sp_id, job_id), what, call), what)
        if not isinstance(body, dict):
            raise _unreadable(what, "a JSON object")
        return SyncJob.from_json(body)

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
        """The stored pairs. Only an answer that really lists them is used: the PUT carries them along.

        A 404 is taken as "nothing stored yet" (terraform-provider-azuread reads it that way; the SDK
        docs say nothing) only when it is Graph's own error body and not the directory saying that the
        service principal does not exist. Pushing then sends only the managed keys, which is right under
        both readings of PUT: merge keeps whatever might be there, and under replace there was nothing to
        keep. A 404 without Graph's error body (a gateway's page) is never read as "nothing stored".
        """
        what = "get synchronization secrets"
        path = self._sp_path(sp_id, "secrets")
        response = self._send("GET", path, what, call, passthrough=frozenset({404}))
        if response.status_code == 404:
            return self._nothing_stored(response, sp_id, path, call)
        stored = []
        for pair in _value_list(response, what):
            if isinstance(pair, dict) and isinstance(pair.get("key"), str):
                value = pair.get("value")
                text = value if isinstance(value, str) else ("" if value is None else json.dumps(value))
                stored.append(StoredSecret(pair["key"], SecretValue(text), masked=text == MASKED_VALUE))
        return stored

    def _nothing_stored(
        self, response: requests.Response, sp_id: str, path: str, call: GraphCall
    ) -> list[StoredSecret]:
        answer = _ErrorAnswer.read(response, call.redactor)
        if not answer.graph_shaped:
            raise self._error_for(response, answer, "get synchronization secrets", path, call.redactor)
        if answer.code == RESOURCE_NOT_FOUND and sp_id.lower() in answer.raw_text.lower():
            raise self._error_for(response, answer, "get synchronization secrets", path, call.redactor)
        logger.info(
            "GET synchronization secrets answered 404 (%s): taken as nothing stored; only the managed keys are pushed",
            answer.code or "no code",
        )
        return []

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
        passthrough: frozenset[int] = frozenset(),
    ) -> requests.Response:
        """Send with retries; a 2xx (or a status in ``passthrough``) is returned, anything else raised.

        Retried: 408, 429, 5xx, no answer, and 409 ``Directory_ConcurrencyViolation`` (documented as
        transient). Every other 4xx goes straight to the caller.
        """
        import requests

        deadline = call.deadline
        url = self.base_url + path
        last_error: SyncError | None = None
        for attempt in range(1, self._settings.max_attempts + 1):
            if not self._in_flight.acquire(timeout=deadline.remaining()):
                raise DeadlineExceeded(f"the invocation deadline passed waiting to send {what}")
            try:
                # A slot is held while waiting at the gate: when a 429 closes it, nothing already queued goes out.
                self.gate.wait(deadline, what)
                deadline.check(what)
                with deadline_scope(deadline):  # bounds the managed-identity request behind a token-cache miss
                    token = self._token(call)
                client_request_id = str(uuid.uuid4())
                headers = {
                    "Authorization": f"Bearer {token}",
                    "client-request-id": client_request_id,
                    "Accept": "application/json",
                }
                sent_at = time.monotonic()
                no_answer: Exception | None = None
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
                    no_answer = exc
            finally:
                self._in_flight.release()
            if no_answer is not None:
                exc = no_answer
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
            status = response.status_code
            if status != 429:
                self.gate.passed()  # a probe of the throttle gate got through: the others go too
            request_id = response.headers.get("request-id")
            if request_id:
                call.request_ids.append(call.redactor.scrub(request_id)[:MAX_REMOTE_CODE])
            if 200 <= status < 300 or status in passthrough:
                return response
            answer = _ErrorAnswer.read(response, call.redactor)
            error = self._error_for(response, answer, what, path, call.redactor)
            if not (status in RETRYABLE_STATUSES or answer.concurrency_violation):
                raise error
            last_error = error
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if status == 429:
                self.gate.close_for(retry_after if retry_after is not None else self._settings.backoff(attempt))
            if status != 429 and attempt < self._settings.max_attempts:
                # a 429 closed the shared gate instead: the next attempt waits there with everyone else
                deadline.sleep(retry_after if retry_after is not None else self._settings.backoff(attempt), what)
        assert last_error is not None
        raise last_error

    def _token(self, call: GraphCall) -> str:
        if call.token_failures:
            raise copy.copy(call.token_failures[0])
        try:
            return self._credential.get_token(self.scope).token
        except SyncError as error:
            call.token_failures.append(error)
            raise

    def _error_for(
        self, response: requests.Response, answer: _ErrorAnswer, what: str, path: str, redactor: Redactor
    ) -> SyncError:
        status = response.status_code
        details: dict[str, Any] = {"httpStatus": status}
        if answer.code:
            details["graphErrorCode"] = answer.code
        if answer.inner_code:
            details["graphInnerCode"] = answer.inner_code
        request_id = response.headers.get("request-id")
        if request_id:
            details["graphRequestId"] = redactor.scrub(request_id)[:MAX_REMOTE_CODE]
        said = answer.said()
        if status == 429:
            return GraphThrottled(f"Graph throttled {what} (HTTP 429); retry later", details=details)
        if answer.concurrency_violation:
            return GraphUnavailable(
                f"Graph kept answering {what} with HTTP 409 {CONCURRENCY_VIOLATION} (another change to the same "
                "directory object at the same moment); retry later",
                details=details,
            )
        if status in RETRYABLE_STATUSES:
            return GraphUnavailable(f"Graph failed {what} (HTTP {status}); retry later.{said}", details=details)
        if status == 401:
            return GraphUnauthorized(
                f"Graph refused the token for {what} (HTTP 401): the token's cloud must match the Graph endpoint "
                f"(check 'cloud' and 'graph.endpoint').{said}",
                details=details,
            )
        if status == 403:
            return GraphForbidden(f"Graph denied {what} (HTTP 403): {GRAPH_PERMISSION_HELP}.{said}", details=details)
        if status == 404 and not answer.graph_shaped:
            return GraphAnswerUnreadable(
                f"{what} was answered 404 without Graph's error body, so it says nothing about the service "
                f"principal, job or secrets; nothing was pushed. If it persists, check 'graph.endpoint'.{said}",
                details=details,
            )
        if status == 404:
            if answer.code == RESOURCE_NOT_FOUND or "/jobs" not in path:
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
            return _validation_error(answer, status, said, details)
        return GraphRequestFailed(f"Graph refused {what} (HTTP {status}).{said}", details=details)


def _validation_error(answer: _ErrorAnswer, status: int, said: str, details: dict[str, Any]) -> SyncError:
    """validateCredentials did not answer 2xx: nothing is pushed, whatever the reason.

    The provisioning service's "Failure" class (the target application answered 401) stays the permanent
    ``CredentialsRejected``. Its "Unavailable" class (the target could not be reached) is retryable, so a
    short outage of the SCIM endpoint during a rotation does not block the push for good. Any other answer
    is also ``CredentialsRejected``: the credentials are not known to work, a person has to look (Graph's
    codes are in the details), and what consumes the code (check, reconcile, alerts) treats it alike.
    """
    if answer.validation_class == "failure":
        details["reason"] = "rejected"
        return CredentialsRejected(
            f"the target application rejected the credentials (validateCredentials HTTP {status}: the provisioning "
            "service got 401 Unauthorized from it); nothing was pushed: check the token and the tenant URL "
            f"(BaseAddress) in Key Vault / config against the target application.{said}",
            details=details,
        )
    if answer.validation_class == "unavailable":
        details["reason"] = "unreachable"
        return TargetApplicationUnreachable(
            f"the provisioning service could not reach the target application to validate the credentials "
            f"(validateCredentials HTTP {status}); nothing was pushed and it is retried later. If it persists: check "
            "that BaseAddress (the tenant URL) is right and resolves publicly, that the target's firewall admits "
            "Microsoft Entra provisioning (the AzureActiveDirectory service tag's addresses), and the target "
            f"application's status.{said}",
            details=details,
        )
    details["reason"] = "notValidated"
    return CredentialsRejected(
        f"validateCredentials did not succeed (HTTP {status}), so the credentials are not known to work; nothing was "
        "pushed: check the token and the tenant URL (BaseAddress) in Key Vault / config against the target "
        f"application, and Graph's codes below.{said}",
        details=details,
    )


def _json_body(response: requests.Response, what: str) -> Any:
    """A 2xx body as JSON; anything else (empty, HTML from a gateway) is an unreadable answer."""
    try:
        return json.loads(response.content)
    except ValueError:
        raise _unreadable(what, "JSON", response) from None


def _value_list(response: requests.Response, what: str) -> list[Any]:
    """The ``value`` array of a Graph collection; a body without one is never taken as an empty list."""
    body = _json_body(response, what)
    values = body.get("value") if isinstance(body, dict) else None
    if not isinstance(values, list):
        raise _unreadable(what, "a JSON object with a 'value' array", response)
    return values


def _unreadable(what: str, expected: str, response: requests.Response | None = None) -> GraphAnswerUnreadable:
    shape = f" ({_describe_body(response)})" if response is not None else ""
    return GraphAnswerUnreadable(
        f"{what} was answered with a body that is not {expected}{shape}: a gateway or proxy may have answered "
        "instead of Graph; nothing was pushed, retry later (if it persists, check 'graph.endpoint')",
        details={"httpStatus": response.status_code} if response is not None else None,
    )


def _describe_body(response: requests.Response) -> str:
    """The shape of a body, never its content: it may be anyone's page, or echo what we sent."""
    size = len(response.content or b"")
    if not size:
        return "an empty body"
    content_type = (response.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    return f"{content_type[:60]}, {size} bytes"


@dataclass(frozen=True)
class _ErrorAnswer:
    """What an error answer says, scrubbed and capped, and the codes that classify it.

    ``graph_shaped``: a JSON ``{"error": {...}}`` body as Graph sends; otherwise (empty, not JSON, a
    gateway's HTML page) only its shape is known. ``raw_text`` is Graph's message before scrubbing, only
    for matching (never shown).
    """

    graph_shaped: bool
    code: str | None
    message: str
    inner_code: str | None
    codes: tuple[str, ...] = field(repr=False)  # as received (unscrubbed): for matching only
    raw_text: str = field(repr=False)
    shape: str = ""

    @classmethod
    def read(cls, response: requests.Response, redactor: Redactor) -> _ErrorAnswer:
        shape = _describe_body(response)
        try:
            body = json.loads(response.content) if (response.content or b"").strip() else None
        except (ValueError, RecursionError):
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(False, None, "", None, (), "", shape)
        code = _text(error.get("code"))
        message = _text(error.get("message")) or ""
        inner = _field(error, "innerError")
        inner_code = _text(inner.get("code")) if isinstance(inner, dict) else None
        codes = [c for c in (code, inner_code) if c]
        raw_text = message
        if message.lstrip().startswith("{"):  # a whole error nested as JSON inside the message (seen in the wild)
            try:
                nested = json.loads(message)
            except (ValueError, RecursionError):
                nested = None
            nested_codes, nested_message = _nested_error(nested)
            if nested_codes:
                codes += nested_codes
                inner_code = nested_codes[0]
            if nested_message:
                message = nested_message
        for suffix in (VALIDATION_FAILURE_SUFFIX, VALIDATION_UNAVAILABLE_SUFFIX):  # or named in plain text
            if suffix in raw_text:
                codes.append(suffix)
        # Everything taken from the answer is scrubbed, codes too: a service may echo what it was sent anywhere.
        return cls(
            True,
            redactor.scrub(code)[:MAX_REMOTE_CODE] if code else None,
            redactor.scrub(message)[:MAX_REMOTE_TEXT],  # scrubbed whole, then cut: a cut could halve a secret
            redactor.scrub(inner_code)[:MAX_REMOTE_CODE] if inner_code else None,
            tuple(codes),
            raw_text,
            shape,
        )

    @property
    def concurrency_violation(self) -> bool:
        return CONCURRENCY_VIOLATION in self.codes

    @property
    def validation_class(self) -> str | None:
        """``failure`` (the target said the credentials are wrong), ``unavailable`` (not reached), or None."""
        if any(c.endswith(VALIDATION_FAILURE_SUFFIX) for c in self.codes):
            return "failure"
        if any(c.endswith(VALIDATION_UNAVAILABLE_SUFFIX) for c in self.codes):
            return "unavailable"
        return None

    def said(self) -> str:
        """What to append to our message: Graph's own words, or the shape of an answer that is not Graph's."""
        if not self.graph_shaped:
            return f" The answer was not a Graph error ({self.shape}): a gateway or proxy may have answered."
        if not self.message:
            return f" Graph said: {self.code}." if self.code else ""
        inner = f" / {self.inner_code}" if self.inner_code else ""
        return f" Graph said: {self.code or 'no code'}{inner}: {self.message}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _field(obj: Mapping[str, Any], name: str) -> Any:
    """A key whatever its case (``innerError`` on Graph, ``innererror`` elsewhere)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if isinstance(k, str) and k.lower() == lowered), None)


def _nested_error(nested: Any, depth: int = 0) -> tuple[list[str], str | None]:
    """Codes (outermost first) and the message of an error object found inside a message."""
    if not isinstance(nested, dict) or depth > 3:
        return [], None
    codes = [c for c in (_text(nested.get("code")),) if c]
    message = _text(nested.get("message"))
    inner = _field(nested, "innerError")
    if isinstance(inner, dict) and _text(inner.get("code")):
        codes.append(inner["code"])
    deeper = nested.get("error")
    if isinstance(deeper, dict):
        more, deeper_message = _nested_error(deeper, depth + 1)
        codes += more
        message = message or deeper_message
    return codes, message
