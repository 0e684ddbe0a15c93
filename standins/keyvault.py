"""Stand-in for a Key Vault's secret data plane, enough for ``SecretClient.get_secret``.

It reproduces what matters to the app: the challenge-based authentication handshake (first request without a
token gets a 401 with ``WWW-Authenticate``), audience and expiry checks on the bearer token, RBAC denials, case-
insensitive secret names, versions with ``enabled``/``exp``/``nbf`` attributes (only ``enabled`` is enforced by
Key Vault; the app must check the dates itself) and Key Vault's error bodies and headers.
"""

from __future__ import annotations

import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from .server import Handler, Request, Response, StandinServer, new_guid
from .tokens import bearer_token, decode_token, token_problem

__all__ = ["KeyVaultStandin"]

DEFAULT_RESOURCE = "https://vault.azure.net"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
SERVICE_VERSION = "1.9.2456.1"
_API_VERSION = re.compile(r"^(7\.\d+|\d{4}-\d{2}-\d{2})(-preview(\.\d+)?)?$")
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_CALLER = "Caller: appid={appid};oid={oid};iss=https://sts.windows.net/{tid}/"
#: RBAC vault, no role assignment (inner code ForbiddenByRbac, DecisionReason DeniedWithNoValidRBAC).
_RBAC_DENIED = (
    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role "
    "definitions were changed recently, please observe propagation time.\r\n" + _CALLER + "\r\n"
    "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
    "Resource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/standin/providers/"
    "microsoft.keyvault/vaults/{vault}/secrets/{name}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\n"
    "DecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: {vault};location=westeurope\r\n"
)
#: Access-policy vault without a 'get' secret permission (inner code AccessDenied).
_POLICY_DENIED = (
    "The user, group or application 'appid={appid};oid={oid};iss=https://sts.windows.net/{tid}/' does not have "
    "secrets get permission on key vault '{vault};location=westeurope'. For help resolving this issue, please see "
    "https://go.microsoft.com/fwlink/?linkid=2125287"
)
#: Public network access disabled, request not through a private endpoint (inner code ForbiddenByConnection,
#: as quoted in public reports, e.g. microsoft/multimodal-ai#171).
_PRIVATE_LINK_ONLY = (
    "Public network access is disabled and request is not from a trusted service nor via an approved private link."
    "\r\n" + _CALLER + "\r\nVault: {vault};location=westeurope"
)
#: The vault firewall does not admit the caller's address (inner code ForbiddenByFirewall, e.g.
#: hashicorp/terraform-provider-azurerm#20742).
_FIREWALL_DENIED = (
    "Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\n"
    + _CALLER
    + "\r\nVault: {vault};location=westeurope"
)
PERMISSION_MODELS = ("rbac", "accessPolicy")
NETWORK_DENIALS = ("privateLinkOnly", "firewall")


def _epoch(moment: datetime | None) -> int | None:
    """Integer epoch seconds as Key Vault reports them; a naive datetime is taken as timezone.utc."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


@dataclass
class _Version:
    version: str
    value: str
    enabled: bool
    created: int
    updated: int
    sequence: int
    expires: int | None = None
    not_before: int | None = None
    content_type: str | None = None
    tags: dict[str, str] | None = None


@dataclass
class _Secret:
    name: str
    versions: list[_Version] = field(default_factory=list)
    last_created: int = 0


class KeyVaultStandin(StandinServer):
    """A vault at :attr:`url` holding secrets set with :meth:`set_secret`.

    ``resource`` is the audience the challenge announces and the token must carry (``https://vault.azure.net`` or
    a national-cloud value such as ``https://vault.usgovcloudapi.net``); ``forbidden_secrets`` (lower-case names)
    and ``forbid_all`` simulate a missing permission: a "Key Vault Secrets User" role assignment when
    ``permission_model`` is ``rbac`` (the default), a 'get' secret access policy when it is ``accessPolicy``.
    ``network_denial`` (``privateLinkOnly`` or ``firewall``) refuses every authenticated request as the vault's
    network rules do. Each answers with Key Vault's own 403 body for that case.
    """

    HOPS: ClassVar[frozenset[str]] = frozenset({"secret"})

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "standin-kv",
        resource: str = DEFAULT_RESOURCE,
        tenant_id: str | None = None,
        authority: str = DEFAULT_AUTHORITY,
    ) -> None:
        super().__init__(ssl_context=ssl_context)
        self.name = name
        self.tenant_id: str = tenant_id or new_guid()
        self._initial = (resource, authority)
        self.resource: str = resource
        self.authority: str = authority
        self.forbidden_secrets: set[str] = set()
        self.forbid_all: bool = False
        self.permission_model: str = "rbac"
        self.network_denial: str | None = None
        self.challenges_issued: int = 0
        self._secrets: dict[str, _Secret] = {}
        self._sequence = 0

    def _reset_state(self) -> None:
        self.resource, self.authority = self._initial
        self.forbidden_secrets = set()
        self.forbid_all = False
        self.permission_model = "rbac"
        self.network_denial = None
        self.challenges_issued = 0
        self._secrets = {}

    # ----------------------------------------------------------------- state API

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        enabled: bool = True,
        expires: datetime | None = None,
        not_before: datetime | None = None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Add a new version (which becomes the current one) and return its 32-hex version id."""
        if not _SECRET_NAME.match(name):
            raise ValueError(f"invalid Key Vault secret name: {name!r}")
        if not isinstance(value, str):
            raise TypeError("secret values are strings")
        with self._lock:
            secret = self._secrets.setdefault(name.lower(), _Secret(name=name))
            created = max(int(time.time()), secret.last_created + 1)
            secret.last_created = created
            self._sequence += 1
            version = _Version(
                version=uuid.uuid4().hex,
                value=value,
                enabled=enabled,
                created=created,
                updated=created,
                sequence=self._sequence,
                expires=_epoch(expires),
                not_before=_epoch(not_before),
                content_type=content_type,
                tags=dict(tags) if tags is not None else None,
            )
            secret.versions.append(version)
            return version.version

    def update_version(
        self,
        name: str,
        version: str,
        *,
        enabled: bool | None = None,
        expires: datetime | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Change attributes of an existing version (``None`` leaves an attribute as it is)."""
        with self._lock:
            found = self._find(name, version)
            if found is None:
                raise KeyError(f"no version {version!r} of secret {name!r}")
            if enabled is not None:
                found.enabled = enabled
            if expires is not None:
                found.expires = _epoch(expires)
            if not_before is not None:
                found.not_before = _epoch(not_before)
            found.updated = max(int(time.time()), found.updated)

    def versions(self, name: str) -> list[str]:
        """Version ids of ``name``, oldest first (empty if the secret does not exist)."""
        with self._lock:
            secret = self._secrets.get(name.lower())
            if secret is None:
                return []
            return [v.version for v in sorted(secret.versions, key=lambda v: v.sequence)]

    def current_version(self, name: str) -> str:
        """The version Key Vault returns for "latest" (the newest one, enabled or not)."""
        with self._lock:
            latest = self._latest(name)
            if latest is None:
                raise KeyError(f"no secret {name!r}")
            return latest.version

    def secret_id(self, name: str, version: str | None = None) -> str:
        """The ``id`` Key Vault reports, ``{url}/secrets/{name as created}/{version}``."""
        with self._lock:
            secret = self._secrets.get(name.lower())
            stored_name = secret.name if secret is not None else name
            return f"{self.url}/secrets/{stored_name}/{version or self.current_version(name)}"

    def _latest(self, name: str) -> _Version | None:
        secret = self._secrets.get(name.lower())
        if secret is None or not secret.versions:
            return None
        return max(secret.versions, key=lambda v: v.sequence)

    def _find(self, name: str, version: str) -> _Version | None:
        secret = self._secrets.get(name.lower())
        if secret is None:
            return None
        for candidate in secret.versions:
            if candidate.version == version.lower():
                return candidate
        return None

    # ----------------------------------------------------------------- HTTP shape

    def route(self, request: Request) -> tuple[str, Handler]:
        segments = request.segments
        if request.method == "GET" and 2 <= len(segments) <= 3 and segments[0] == "secrets":
            return "secret", self._get_secret
        return self.UNKNOWN_HOP, self._unknown

    def common_headers(self, request: Request) -> dict[str, str]:
        return {
            "Cache-Control": "no-cache",
            "x-ms-request-id": request.request_id,
            "x-ms-keyvault-service-version": SERVICE_VERSION,
            "x-ms-keyvault-network-info": "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;",
            "x-ms-keyvault-region": "westeurope",
            "Strict-Transport-Security": "max-age=31536000;includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }

    def _challenge_header(self) -> str:
        return f'Bearer authorization="{self.authority.rstrip("/")}/{self.tenant_id}", resource="{self.resource}"'

    def default_fault_response(self, request: Request, status: int) -> Response:
        codes = {
            400: ("BadParameter", "The request is invalid."),
            401: ("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
            403: ("Forbidden", "Caller is not authorized to perform action on resource."),
            404: ("NotFound", "The requested resource was not found."),
            409: ("Conflict", "The request conflicts with the current state of the resource."),
            429: ("Throttled", "Request was not allowed because of throttling. Please retry after some time."),
            500: ("InternalServerError", "An unexpected error occurred while processing the request."),
        }
        if status in codes:
            code, message = codes[status]
        elif status >= 500:
            code, message = "ServiceUnavailable", "The service is temporarily unavailable. Please retry later."
        else:
            code, message = "BadRequest", f"Request failed with status {status}."
        response = self.error_response(request, status, code, message)
        if status == 401:
            response.headers["WWW-Authenticate"] = self._challenge_header()
        return response

    def _unknown(self, request: Request) -> Response:
        if request.segments[:1] == ["secrets"] and request.method != "GET":
            response = self.error_response(request, 405, "BadRequest", "The requested method is not allowed.")
            response.headers["Allow"] = "GET"
            return response
        return self.error_response(request, 404, "NotFound", "The requested resource was not found.")

    def _unauthorized(self, request: Request, message: str) -> Response:
        response = self.error_response(request, 401, "Unauthorized", message)
        response.headers["WWW-Authenticate"] = self._challenge_header()
        with self._lock:
            self.challenges_issued += 1
        return response

    def _get_secret(self, request: Request) -> Response:
        authorization = request.header("Authorization")
        if authorization is None:
            return self._unauthorized(request, "AKV10000: Request is missing a Bearer or PoP token.")
        token = bearer_token(authorization)
        claims = decode_token(token) if token else None
        problem = token_problem(claims, self.resource)
        if problem == "malformed":
            return self._unauthorized(request, "AKV10022: Invalid token: the token could not be read.")
        if problem == "audience":
            found = claims.get("aud") if claims else None
            return self._unauthorized(request, f"AKV10022: Invalid audience. Expected {self.resource}, found: {found}.")
        if problem == "expired":
            return self._unauthorized(request, "AKV10032: Token validation failed. The token is expired.")
        assert claims is not None

        api_version = request.query.get("api-version")
        if api_version is None:
            return self.error_response(request, 400, "BadParameter", "api-version query parameter is missing.")
        if not _API_VERSION.match(api_version):
            return self.error_response(
                request, 400, "BadParameter", f"The specified version ({api_version}) is not recognized."
            )

        name = request.segments[1]
        version = request.segments[2] if len(request.segments) == 3 else ""
        with self._lock:
            denied = self._denial(name, claims)
            if denied is not None:
                return denied
            secret = self._secrets.get(name.lower())
            found = (self._find(name, version) if version else self._latest(name)) if secret else None
            if secret is None or found is None:
                shown = f"{name}/{version}" if version else name
                return self.error_response(
                    request,
                    404,
                    "SecretNotFound",
                    f"A secret with (name/id) {shown} was not found in this key vault. If you recently deleted this "
                    "secret you may be able to recover it using the correct recovery command. For help resolving "
                    "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                )
            if not found.enabled:
                return Response(
                    403,
                    {
                        "error": {
                            "code": "Forbidden",
                            "message": "Operation get is not allowed on a disabled secret.",
                            "innererror": {"code": "SecretDisabled"},
                        }
                    },
                )
            return Response(200, self._bundle(secret, found))

    def _denial(self, name: str, claims: dict[str, Any]) -> Response | None:
        """Key Vault's 403 for a network rule or a missing permission, if one applies (lock held)."""
        if self.network_denial is not None and self.network_denial not in NETWORK_DENIALS:
            raise ValueError(f"network_denial must be one of {NETWORK_DENIALS}")
        if self.permission_model not in PERMISSION_MODELS:
            raise ValueError(f"permission_model must be one of {PERMISSION_MODELS}")
        fields = {
            "appid": claims.get("appid", ""), "oid": claims.get("oid", ""), "tid": claims.get("tid", ""),
            "name": name, "vault": self.name,
        }  # fmt: skip
        if self.network_denial == "privateLinkOnly":
            message, inner = _PRIVATE_LINK_ONLY.format(**fields), "ForbiddenByConnection"
        elif self.network_denial == "firewall":
            message, inner = _FIREWALL_DENIED.format(**fields), "ForbiddenByFirewall"
        elif self.forbid_all or name.lower() in {forbidden.lower() for forbidden in self.forbidden_secrets}:
            if self.permission_model == "rbac":
                message, inner = _RBAC_DENIED.format(**fields), "ForbiddenByRbac"
            else:
                message, inner = _POLICY_DENIED.format(**fields), "AccessDenied"
        else:
            return None
        return Response(403, {"error": {"code": "Forbidden", "message": message, "innererror": {"code": inner}}})

    def _bundle(self, secret: _Secret, version: _Version) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": version.enabled}
        if version.not_before is not None:
            attributes["nbf"] = version.not_before
        if version.expires is not None:
            attributes["exp"] = version.expires
        attributes.update(
            {
                "created": version.created,
                "updated": version.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            }
        )
        body: dict[str, Any] = {
            "value": version.value,
            "id": f"{self.url}/secrets/{secret.name}/{version.version}",
            "attributes": attributes,
        }
        if version.content_type is not None:
            body["contentType"] = version.content_type
        if version.tags is not None:
            body["tags"] = dict(version.tags)
        return body
