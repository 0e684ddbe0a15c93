"""Stand-in for the App Service / Azure Functions managed-identity endpoint (``IDENTITY_ENDPOINT``).

azure-identity's ``ManagedIdentityCredential`` (through msal) talks to it unchanged when ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` point here. It issues unsigned JWT-shaped tokens whose claims (``aud``, ``roles``, ``oid``,
``exp``) the Key Vault and Graph stand-ins check, so a wrong scope or a missing permission shows up as the real
services would report it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from .server import Handler, Request, Response, StandinServer, new_guid
from .tokens import make_token

__all__ = ["ManagedIdentityStandin"]

API_VERSION = "2019-08-01"
DEFAULT_ROLES = ("Synchronization.ReadWrite.All",)
_NO_IDENTITY = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."


class ManagedIdentityStandin(StandinServer):
    """``GET {url}/msi/token?api-version=2019-08-01&resource=R[&client_id=C]`` with ``X-IDENTITY-HEADER``.

    Configuration attributes (``known_client_ids``, ``roles``, ``token_lifetime``) go back to their constructor
    values on :meth:`reset`; ``identity_header``, ``principal_id``, ``tenant_id`` and ``system_client_id`` stay
    stable because the app under test has already been given them.
    """

    HOPS: ClassVar[frozenset[str]] = frozenset({"token"})
    PATH = "/msi/token"

    def __init__(
        self,
        *,
        known_client_ids: Iterable[str] = (),
        roles: Iterable[str] = DEFAULT_ROLES,
        token_lifetime: float = 3600,
        tenant_id: str | None = None,
    ) -> None:
        super().__init__(ssl_context=None)
        self.identity_header: str = secrets.token_hex(16)
        self.principal_id: str = new_guid()
        self.tenant_id: str = tenant_id or new_guid()
        self.system_client_id: str = new_guid()
        self._initial = (frozenset(known_client_ids), tuple(roles), float(token_lifetime))
        self.known_client_ids: set[str] = set()
        self.roles: list[str] = []
        self.token_lifetime: float = 0.0
        self._issued: list[str] = []
        self._reset_state()

    def _reset_state(self) -> None:
        client_ids, roles, lifetime = self._initial
        self.known_client_ids = set(client_ids)
        self.roles = list(roles)
        self.token_lifetime = lifetime
        self._issued = []

    @property
    def endpoint(self) -> str:
        """Value for ``IDENTITY_ENDPOINT``."""
        return f"{self.url}{self.PATH}"

    def token_requests(self, resource: str | None = None) -> int:
        """Successful token issuances, optionally only those for ``resource`` (exact string)."""
        with self._lock:
            return sum(1 for issued in self._issued if resource is None or issued == resource)

    def issue_token(
        self,
        resource: str,
        client_id: str | None = None,
        *,
        lifetime: float | None = None,
        roles: Iterable[str] | None = None,
        now: int | None = None,
    ) -> str:
        """Mint a token as the endpoint would (for tests that call Key Vault/Graph stand-ins directly).

        ``lifetime`` may be negative to mint an already expired token; ``roles`` overrides :attr:`roles`.
        """
        now = int(time.time()) if now is None else now
        expires = now + int(self.token_lifetime if lifetime is None else lifetime)
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": expires,
            "appid": client_id or self.system_client_id,
            "oid": self.principal_id,
            "sub": self.principal_id,
            "roles": list(self.roles if roles is None else roles),
            "tid": self.tenant_id,
            "idtyp": "app",
        }
        return make_token(claims)

    # ----------------------------------------------------------------- HTTP

    def route(self, request: Request) -> tuple[str, Handler]:
        if request.raw_path.rstrip("/") == self.PATH:
            return "token", self._token
        return self.UNKNOWN_HOP, self._not_found

    def common_headers(self, request: Request) -> dict[str, str]:
        return {"X-Ms-Request-Id": request.request_id}

    def fault_qualifier(self, request: Request) -> str | None:
        """``token@graph`` / ``token@keyvault`` / ``token@storage``: faults for one resource's tokens."""
        resource = request.query.get("resource", "").lower()
        for name, marker in (("graph", "graph"), ("keyvault", "vault"), ("storage", "storage")):
            if marker in resource:
                return name
        return None

    def error_response(self, request: Request, status: int, code: str, message: str) -> Response:
        """App Service's token endpoint answers errors as ``{"statusCode", "message", "correlationId"}``."""
        return Response(status, {"statusCode": status, "message": message, "correlationId": request.request_id})

    def default_fault_response(self, request: Request, status: int) -> Response:
        messages = {429: "Too many requests.", 500: "An unexpected error occured while fetching the AAD Token."}
        return self.error_response(request, status, "", messages.get(status, f"Request failed with status {status}."))

    def _not_found(self, request: Request) -> Response:
        return self.error_response(request, 404, "", "Not found.")

    def _token(self, request: Request) -> Response:
        if request.method != "GET":
            response = self.error_response(request, 405, "", "The requested resource does not support this method.")
            response.headers["Allow"] = "GET"
            return response
        header = request.header("X-IDENTITY-HEADER")
        if header is None or not secrets.compare_digest(header, self.identity_header):
            return self.error_response(request, 401, "", "Unauthorized request: X-IDENTITY-HEADER missing or invalid.")
        if request.query.get("api-version") != API_VERSION:
            return self.error_response(request, 400, "", "Invalid or missing api-version.")
        resource = request.query.get("resource", "")
        if not resource.strip():
            return self.error_response(request, 400, "", "Missing resource parameter.")
        for unsupported in ("mi_res_id", "object_id", "principal_id", "msi_res_id"):
            if unsupported in request.query:
                return self.error_response(request, 400, "", _NO_IDENTITY)
        client_id = request.query.get("client_id")
        with self._lock:
            if client_id is not None and client_id not in self.known_client_ids:
                return self.error_response(request, 400, "", _NO_IDENTITY)
            now = int(time.time())
            token = self.issue_token(resource, client_id, now=now)
            expires_on = now + int(self.token_lifetime)
            self._issued.append(resource)
        body = {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or self.system_client_id,
        }
        return Response(200, body)
