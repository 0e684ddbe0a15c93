"""Stand-in for the Microsoft Graph synchronization API of service principals.

It models the behaviour the app depends on and the undocumented corners it must survive. PUT on
``synchronization/secrets`` has two modes, because Microsoft does not document which one Graph has: ``merge``
(the default, as the public evidence suggests: the keys sent are set, an empty value deletes its key, others stay)
and ``replace`` (the strictest reading: the set sent becomes the stored set, so a push that drops unmanaged keys is
caught). GET masks sensitive values as ``*`` (and can answer 404 while nothing is stored, as terraform expects), key
names are case-sensitive enum members (a wrong case gives Graph's odd 500), validateCredentials fails as the
provisioning service does (the target application's 401 is ``...CredentialValidationFailure``; a target that
cannot be reached is ``...CredentialValidationUnavailable``), with the code nested as JSON inside the error
message (as seen in the wild) or, on request, in ``error.code``, ``error.innerError.code`` or plain text. ``start``
is recorded together with the status the job had, so tests can prove an Active or Paused job was never started.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from .server import Handler, Request, Response, StandinServer
from .tokens import bearer_token, decode_token, token_problem

__all__ = ["SECRET_KEYS", "SENSITIVE_KEYS", "GraphStandin"]

DEFAULT_AUDIENCE = "https://graph.microsoft.com"
READ_WRITE_ALL = "Synchronization.ReadWrite.All"
OWNED_BY = "Application.ReadWrite.OwnedBy"
VERSIONS = ("v1.0", "beta")
JOB_STATUSES = ("NotConfigured", "NotRun", "Active", "Paused", "Quarantine")

#: Keys whose values Graph never returns (GET shows ``*``).
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "SecretToken",
        "Password",
        "ClientSecret",
        "AppKey",
        "ConsumerSecret",
        "TokenKey",
        "Oauth2AccessToken",
        "Oauth2RefreshToken",
        "Oauth2ClientSecret",
        "Oauth2AuthorizationCode",
        "ConnectionString",
    }
)

#: The ``synchronizationSecret`` enum, case-sensitive.
# fmt: off
SECRET_KEYS: frozenset[str] = frozenset(
    [
        "None", "UserName", "Password", "SecretToken", "AppKey", "BaseAddress", "ClientIdentifier", "ClientSecret",
        "SingleSignOnType", "Sandbox", "Url", "Domain", "ConsumerKey", "ConsumerSecret", "TokenKey", "TokenExpiration",
        "Oauth2AccessToken", "Oauth2AccessTokenCreationTime", "Oauth2RefreshToken", "SyncAll", "InstanceName",
        "Oauth2ClientId", "Oauth2ClientSecret", "CompanyId", "UpdateKeyOnSoftDelete", "SynchronizationSchedule",
        "SystemOfRecord", "SandboxName", "EnforceDomain", "SyncNotificationSettings", "SkipOutOfScopeDeletions",
        "Oauth2AuthorizationCode", "Oauth2RedirectUri", "ApplicationTemplateIdentifier", "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri", "AuthenticationType", "Server", "PerformInboundEntitlementGrants",
        "HardDeletesEnabled", "SyncAgentCompatibilityKey", "SyncAgentADContainer", "ValidateDomain", "TestReferences",
        "ConnectionString",
    ]
)
# fmt: on

PUT_MODES = ("merge", "replace")
#: Where a failed validateCredentials puts the provisioning service's code (all seen or reported publicly).
VALIDATION_CODE_PLACEMENTS = ("nested", "code", "innerError", "text")
VALIDATION_FAILURE = "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
VALIDATION_UNAVAILABLE = "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable"
#: What the provisioning service says for each class (vendor KB articles quote the first; the second is what a
#: tenant URL that does not resolve gives).
_VALIDATION_MESSAGES = {
    VALIDATION_FAILURE: "We were unable to validate the credentials against the target application. The target "
    "application returned an error: Response Status Code: Unauthorized. Verify the Secret Token and try again.",
    VALIDATION_UNAVAILABLE: "We are not able to connect to the target application. Verify that the Tenant URL is "
    "correct and that the application is reachable: the remote name could not be resolved.",
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class _Job:
    id: str
    template_id: str
    status: str
    quarantine_reason: str | None = None
    quarantine_began: datetime | None = None
    start_calls: list[str] = field(default_factory=list)


@dataclass
class _ServicePrincipal:
    id: str
    owners: set[str]
    jobs: dict[str, _Job] = field(default_factory=dict)
    stored: dict[str, str] = field(default_factory=dict)
    history: list[dict[str, str]] = field(default_factory=list)
    accepted: dict[str, str] | None = None
    also_accepted: list[dict[str, str]] = field(default_factory=list)
    validations: list[bool] = field(default_factory=list)
    target_unreachable: bool = False


class _GraphError(Exception):
    """Raised inside handlers to answer with a Graph error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        inner_code: str | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner_code = inner_code


class GraphStandin(StandinServer):
    """Graph at :attr:`url`, serving ``/v1.0/`` and ``/beta/`` synchronization routes for service principals.

    ``audience`` is the token audience accepted (``https://graph.microsoft.com`` by default; set e.g.
    ``https://graph.microsoft.us`` to simulate a national cloud).
    """

    HOPS: ClassVar[frozenset[str]] = frozenset(
        {"list_jobs", "get_job", "validate", "get_secrets", "put_secrets", "start"}
    )

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        audience: str = DEFAULT_AUDIENCE,
        put_mode: str = "merge",
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self._check_put_mode(put_mode)
        self._initial_audience = audience
        self.audience: str = audience
        #: ``merge`` or ``replace``: what PUT .../synchronization/secrets does (see the module docstring).
        self.put_mode: str = put_mode
        #: What :meth:`reset` sets ``put_mode`` back to (a test running a whole module under one mode sets both).
        self.default_put_mode: str = put_mode
        #: Where a failed validateCredentials carries the provisioning service's code.
        self.validation_code_placement: str = "nested"
        #: GET .../secrets answers 404 (instead of an empty list) while nothing is stored.
        self.not_found_when_empty: bool = False
        self._principals: dict[str, _ServicePrincipal] = {}

    def _reset_state(self) -> None:
        self.audience = self._initial_audience
        self._check_put_mode(self.default_put_mode)
        self.put_mode = self.default_put_mode
        self.validation_code_placement = "nested"
        self.not_found_when_empty = False
        self._principals = {}

    @staticmethod
    def _check_put_mode(mode: str) -> None:
        if mode not in PUT_MODES:
            raise ValueError(f"put_mode must be one of {PUT_MODES}, not {mode!r}")

    # ----------------------------------------------------------------- state API

    def add_service_principal(self, sp_id: str, owners: Iterable[str] = ()) -> None:
        """Create (or replace) a service principal; ``owners`` are object ids (compare with a token's ``oid``)."""
        with self._lock:
            self._principals[sp_id.lower()] = _ServicePrincipal(id=sp_id, owners={o.lower() for o in owners})

    def add_job(
        self,
        sp_id: str,
        *,
        job_id: str | None = None,
        template_id: str = "scim",
        status: str = "Active",
        quarantine_reason: str | None = None,
    ) -> str:
        """Add a synchronization job and return its id (default ``{template_id}.{32 hex}.{sp_id}``)."""
        self._check_status(status)
        with self._lock:
            sp = self._sp(sp_id)
            job_id = job_id or f"{template_id}.{uuid.uuid4().hex}.{sp_id}"
            job = _Job(id=job_id, template_id=template_id, status=status)
            self._apply_status(job, status, quarantine_reason)
            sp.jobs[job_id.lower()] = job
            return job_id

    def set_job_status(self, sp_id: str, job_id: str, status: str, quarantine_reason: str | None = None) -> None:
        self._check_status(status)
        with self._lock:
            self._apply_status(self._job(sp_id, job_id), status, quarantine_reason)

    def job_status(self, sp_id: str, job_id: str) -> str:
        with self._lock:
            return self._job(sp_id, job_id).status

    def quarantine_reason(self, sp_id: str, job_id: str) -> str | None:
        with self._lock:
            return self._job(sp_id, job_id).quarantine_reason

    def start_calls(self, sp_id: str, job_id: str) -> list[str]:
        """One entry per ``start`` call: the status code the job had just before it."""
        with self._lock:
            return list(self._job(sp_id, job_id).start_calls)

    def set_stored_secrets(self, sp_id: str, secrets: Mapping[str, str]) -> None:
        """Set what Graph holds for the service principal (not recorded in :meth:`secret_history`)."""
        with self._lock:
            self._sp(sp_id).stored = dict(secrets)

    def stored_secrets(self, sp_id: str) -> dict[str, str]:
        """The stored pairs, unmasked (for assertions)."""
        with self._lock:
            return dict(self._sp(sp_id).stored)

    def secret_history(self, sp_id: str) -> list[dict[str, str]]:
        """The stored set after each successful PUT, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._sp(sp_id).history]

    def accept_credentials(self, sp_id: str, credentials: Mapping[str, str]) -> None:
        """What the simulated target application accepts: each of these keys with exactly this value.

        Until this is called for a service principal, validateCredentials fails for it.
        """
        with self._lock:
            self._sp(sp_id).accepted = dict(credentials)

    def also_accept_credentials(self, sp_id: str, credentials: Mapping[str, str]) -> None:
        """Keep accepting another set as well (an old token that stays valid during a rotation).

        :meth:`accept_credentials` does not clear these.
        """
        with self._lock:
            self._sp(sp_id).also_accepted.append(dict(credentials))

    def set_target_unreachable(self, sp_id: str, unreachable: bool = True) -> None:
        """The provisioning service cannot reach the target application (DNS, network, outage): validateCredentials
        fails with ``...CredentialValidationUnavailable`` whatever the credentials."""
        with self._lock:
            self._sp(sp_id).target_unreachable = unreachable

    def validations(self, sp_id: str) -> list[bool]:
        """Outcome of every validateCredentials call that reached the target-application check."""
        with self._lock:
            return list(self._sp(sp_id).validations)

    def validation_attempts(self, sp_id: str) -> int:
        with self._lock:
            return len(self._sp(sp_id).validations)

    def _sp(self, sp_id: str) -> _ServicePrincipal:
        try:
            return self._principals[sp_id.lower()]
        except KeyError:
            raise KeyError(f"no service principal {sp_id!r}") from None

    def _job(self, sp_id: str, job_id: str) -> _Job:
        try:
            return self._sp(sp_id).jobs[job_id.lower()]
        except KeyError:
            raise KeyError(f"no job {job_id!r} on service principal {sp_id!r}") from None

    @staticmethod
    def _check_status(status: str) -> None:
        if status not in JOB_STATUSES:
            raise ValueError(f"job status must be one of {JOB_STATUSES}, not {status!r}")

    @staticmethod
    def _apply_status(job: _Job, status: str, quarantine_reason: str | None) -> None:
        job.status = status
        if status == "Quarantine":
            job.quarantine_reason = quarantine_reason or "EncounteredQuarantineException"
            job.quarantine_began = job.quarantine_began or datetime.now(timezone.utc)
        else:
            job.quarantine_reason = None
            job.quarantine_began = None

    # ----------------------------------------------------------------- HTTP shape

    def common_headers(self, request: Request) -> dict[str, str]:
        client_request_id = request.header("client-request-id") or request.request_id
        return {
            "request-id": request.request_id,
            "client-request-id": client_request_id,
            "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5",'
            '"ScaleUnit":"000","RoleInstance":"standin"}}',
            "Strict-Transport-Security": "max-age=31536000",
            "Cache-Control": "no-cache",
        }

    def error_response(
        self, request: Request, status: int, code: str, message: str, *, inner_code: str | None = None
    ) -> Response:
        client_request_id = request.header("client-request-id") or request.request_id
        inner: dict[str, Any] = {"code": inner_code} if inner_code else {}
        inner.update(
            {
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request.request_id,
                "client-request-id": client_request_id,
            }
        )
        return Response(status, {"error": {"code": code, "message": message, "innerError": inner}})

    def default_fault_response(self, request: Request, status: int) -> Response:
        codes = {
            400: ("BadRequest", "Bad request."),
            401: ("InvalidAuthenticationToken", "Access token validation failure."),
            403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
            404: ("NotFound", "The requested resource was not found."),
            409: ("Conflict", "The request conflicts with the current state."),
            429: ("TooManyRequests", "Too many requests"),
            500: ("generalException", "General exception while processing."),
            502: ("serviceNotAvailable", "The service is temporarily unavailable (bad gateway)."),
            503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
            504: ("serviceNotAvailable", "The service did not respond in time (gateway timeout)."),
        }
        code, message = codes.get(
            status,
            ("serviceNotAvailable", "Service unavailable.") if status >= 500 else ("UnknownError", ""),
        )
        return self.error_response(request, status, code, message)

    def internal_error(self, request: Request) -> Response:
        return self.error_response(request, 500, "generalException", "General exception while processing.")

    def invalid_json(self, request: Request) -> Response:
        return self.error_response(request, 400, "BadRequest", "Unable to read JSON request payload.")

    def route(self, request: Request) -> tuple[str, Handler]:
        hop, methods, _, _ = self._match(request)
        if hop is None:
            return self.UNKNOWN_HOP, self._unmatched
        if request.method not in methods:
            return self.UNKNOWN_HOP, self._unmatched
        return hop, self._dispatch

    @staticmethod
    def _match(request: Request) -> tuple[str | None, tuple[str, ...], str | None, str | None]:
        """Map a path to (hop, allowed methods, sp id, job id); hop is ``None`` when no route matches."""
        s = request.segments
        lowered = [part.lower() for part in s]
        if len(s) < 4 or s[0] not in VERSIONS or lowered[1] != "serviceprincipals" or lowered[3] != "synchronization":
            return None, (), None, None
        sp, rest = s[2], lowered[4:]
        if rest == ["secrets"]:
            hop = "get_secrets" if request.method == "GET" else "put_secrets"
            return hop, ("GET", "PUT"), sp, None
        if rest == ["jobs"]:
            return "list_jobs", ("GET",), sp, None
        if len(rest) == 2 and rest[0] == "jobs":
            return "get_job", ("GET",), sp, s[5]
        if len(rest) == 3 and rest[0] == "jobs" and rest[2] == "validatecredentials":
            return "validate", ("POST",), sp, s[5]
        if len(rest) == 3 and rest[0] == "jobs" and rest[2] == "start":
            return "start", ("POST",), sp, s[5]
        return None, (), sp, None

    def _unmatched(self, request: Request) -> Response:
        hop, methods, _, _ = self._match(request)
        if hop is not None:
            response = self.error_response(
                request, 405, "Request_BadRequest", "Specified HTTP method is not allowed for the request uri."
            )
            response.headers["Allow"] = ", ".join(methods)
            return response
        last = request.segments[-1] if request.segments else ""
        return self.error_response(request, 404, "UnknownError", f"Resource not found for the segment '{last}'.")

    def _dispatch(self, request: Request) -> Response:
        try:
            return self._handle(request)
        except _GraphError as error:
            response = self.error_response(
                request, error.status, error.code, error.message, inner_code=error.inner_code
            )
            response.headers.update(error.headers)
            return response

    def _handle(self, request: Request) -> Response:
        hop, _, sp_id, job_id = self._match(request)
        claims = self._authenticate(request)
        roles = claims.get("roles") if isinstance(claims.get("roles"), list) else []
        if READ_WRITE_ALL not in roles and OWNED_BY not in roles:
            raise self._denied()
        assert sp_id is not None
        with self._lock:
            sp = self._principals.get(sp_id.lower())
            if sp is None:
                raise _GraphError(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{sp_id}' does not exist or one of its queried reference-property objects are not "
                    "present.",
                )
            if READ_WRITE_ALL not in roles and str(claims.get("oid", "")).lower() not in sp.owners:
                raise self._denied()
            job = None
            if job_id is not None:
                job = sp.jobs.get(job_id.lower())
                if job is None:
                    raise _GraphError(404, "NotFound", f"The synchronization job '{job_id}' was not found.")
            if hop == "list_jobs":
                return Response(
                    200,
                    {
                        "@odata.context": f"{self.url}/{request.segments[0]}/$metadata#servicePrincipals('{sp.id}')"
                        "/synchronization/jobs",
                        "value": [self._job_json(j) for j in sp.jobs.values()],
                    },
                )
            if hop == "get_job":
                assert job is not None
                body = {
                    "@odata.context": f"{self.url}/{request.segments[0]}/$metadata#servicePrincipals('{sp.id}')"
                    "/synchronization/jobs/$entity",
                    **self._job_json(job),
                }
                return Response(200, body)
            if hop == "get_secrets":
                if not sp.stored and self.not_found_when_empty:
                    raise _GraphError(
                        404, "NotFound", "No synchronization secrets are stored for this service principal."
                    )
                return Response(
                    200,
                    {
                        "@odata.context": f"{self.url}/{request.segments[0]}/$metadata#servicePrincipals('{sp.id}')"
                        "/synchronization/secrets",
                        "value": [
                            {"key": key, "value": "*" if key in SENSITIVE_KEYS else value}
                            for key, value in sp.stored.items()
                        ],
                    },
                )
            if hop == "put_secrets":
                pairs = self._pairs(request, "value")
                self._check_put_mode(self.put_mode)
                if self.put_mode == "replace":
                    sp.stored = pairs
                else:  # merge: the keys sent are set; an empty value deletes its key
                    merged = {**sp.stored, **pairs}
                    sp.stored = {key: value for key, value in merged.items() if value != ""}
                sp.history.append(dict(sp.stored))
                return Response(204)
            if hop == "validate":
                return self._validate(request, sp)
            if hop == "start":
                assert job is not None
                job.start_calls.append(job.status)
                self._apply_status(job, "Active", None)
                return Response(204)
        raise _GraphError(404, "UnknownError", "")

    def _authenticate(self, request: Request) -> dict[str, Any]:
        challenge = {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'
        }
        authorization = request.header("Authorization")
        if not authorization:
            raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
        token = bearer_token(authorization)
        claims = decode_token(token) if token else None
        problem = token_problem(claims, self.audience)
        if problem == "malformed":
            raise _GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.", challenge)
        if problem == "audience":
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.", challenge
            )
        if problem == "expired":
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.", challenge
            )
        assert claims is not None
        return claims

    @staticmethod
    def _denied() -> _GraphError:
        return _GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    @staticmethod
    def _require_json_content_type(request: Request) -> None:
        content_type = (request.header("Content-Type") or "").lower()
        if "application/json" not in content_type:
            raise _GraphError(
                400,
                "BadRequest",
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
            )

    def _pairs(self, request: Request, list_field: str) -> dict[str, str]:
        """Parse ``{list_field: [{"key", "value"}, ...]}`` strictly; never echo values in the error."""
        self._require_json_content_type(request)
        body = request.json
        items = body.get(list_field) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise _GraphError(400, "BadRequest", f"The request body must contain a '{list_field}' array.")
        pairs: dict[str, str] = {}
        for item in items:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("key"), str)
                or not isinstance(item.get("value", ""), (str, type(None)))
            ):
                raise _GraphError(400, "BadRequest", "Each item must be an object with string 'key' and 'value'.")
            key = item["key"]
            if key not in SECRET_KEYS:
                raise _GraphError(500, "UnknownError", f"Requested value '{key}' was not found.")
            pairs[key] = item.get("value") or ""
        return pairs

    def _validate(self, request: Request, sp: _ServicePrincipal) -> Response:
        body = request.json if isinstance(request.json, dict) else {}
        use_saved = body.get("useSavedCredentials", False)
        if not isinstance(use_saved, bool):
            raise _GraphError(400, "BadRequest", "useSavedCredentials must be a boolean.")
        template_id = body.get("templateId")
        if template_id is not None and not isinstance(template_id, str):
            raise _GraphError(400, "BadRequest", "templateId must be a string.")
        if use_saved:
            if body.get("credentials") not in (None, []):
                self._pairs(request, "credentials")
            submitted = dict(sp.stored)
        else:
            submitted = self._pairs(request, "credentials")
        if sp.target_unreachable:
            sp.validations.append(False)
            raise self._validation_failed(VALIDATION_UNAVAILABLE)
        candidates = ([sp.accepted] if sp.accepted is not None else []) + sp.also_accepted
        ok = any(all(submitted.get(key) == value for key, value in accepted.items()) for accepted in candidates)
        sp.validations.append(ok)
        if ok:
            return Response(204)
        raise self._validation_failed(VALIDATION_FAILURE)

    def _validation_failed(self, code: str) -> _GraphError:
        """The 400 the provisioning service answers, with its code where :attr:`validation_code_placement` says."""
        message = _VALIDATION_MESSAGES[code]
        placement = self.validation_code_placement
        if placement not in VALIDATION_CODE_PLACEMENTS:
            raise ValueError(f"validation_code_placement must be one of {VALIDATION_CODE_PLACEMENTS}")
        if placement == "code":
            return _GraphError(400, code, message)
        if placement == "innerError":
            return _GraphError(400, "BadRequest", message, inner_code=code)
        if placement == "text":
            return _GraphError(400, "UnknownError", f"{code}: {message}")
        nested = json.dumps({"code": code, "message": message}, separators=(",", ":"))
        return _GraphError(400, "BadRequest", nested)

    @staticmethod
    def _job_json(job: _Job) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        began = now - timedelta(minutes=40)
        ended = began + timedelta(seconds=12)
        execution = {
            "activityIdentifier": None,
            "countEntitled": 0,
            "countExported": 0,
            "countImported": 0,
            "timeBegan": _iso(began),
            "timeEnded": _iso(ended),
            "state": "Failed" if job.status == "Quarantine" else "Succeeded",
            "error": None,
        }
        quarantine = None
        if job.status == "Quarantine":
            series_began = job.quarantine_began or now
            quarantine = {
                "currentBegan": _iso(series_began),
                "nextAttempt": _iso(now + timedelta(hours=12)),
                "reason": job.quarantine_reason,
                "seriesBegan": _iso(series_began),
                "seriesCount": 1,
                "error": None,
            }
        never_ran = job.status in ("NotConfigured", "NotRun")
        return {
            "id": job.id,
            "templateId": job.template_id,
            "schedule": {"expiration": None, "interval": "PT40M", "state": "Active"},
            "status": {
                "code": job.status,
                "countSuccessiveCompleteFailures": 1 if job.status == "Quarantine" else 0,
                "escrowsPruned": False,
                "lastExecution": None if never_ran else execution,
                "lastSuccessfulExecution": None if never_ran else {**execution, "state": "Succeeded"},
                "lastSuccessfulExecutionWithExports": None,
                "progress": [],
                "quarantine": quarantine,
                "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z" if never_ran else _iso(began),
                "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z" if never_ran else _iso(ended),
                "synchronizedEntryCountByType": [],
                "troubleshootingUrl": None,
            },
            "synchronizationJobSettings": [],
        }
