"""A fault-injecting pass-through in front of Azurite: real Blob Storage behaviour, plus the outages.

Every request goes to Azurite unchanged (Shared Key signatures cover the path and ``x-ms-*``
headers, not the port, so they stay valid), so leases, ETags and error bodies are Azurite's own.
What Azurite cannot do -- answer 503 ``ServerBusy`` or 500, reset a connection, stall -- is injected
per hop with the same :class:`Fault` API as the other stand-ins, and the request log counts the
ledger's calls per target (``calls_for``).
"""

from __future__ import annotations

import http.client
from collections import Counter
from typing import ClassVar
from urllib.parse import urlencode, urlsplit

from .azurite import connection_string
from .server import Handler, Request, Response, StandinServer

__all__ = ["StorageProxy"]

_ERRORS = {
    500: ("InternalError", "The server encountered an internal error. Please retry the request."),
    503: ("ServerBusy", "The server is currently unable to receive requests. Please retry your request."),
    429: ("ServerBusy", "Ingress is over the account limit."),
    403: (
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    ),
}


class StorageProxy(StandinServer):
    """Plain http on loopback, forwarding to the Azurite blob endpoint ``upstream``."""

    HOPS: ClassVar[frozenset[str]] = frozenset(
        {"acquire", "renew", "release", "break", "read", "write", "create_container", "other"}
    )

    def __init__(self, upstream: str) -> None:
        super().__init__()
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)

    @property
    def connection_string(self) -> str:
        return connection_string(self.url)

    def route(self, request: Request) -> tuple[str, Handler]:
        return _hop(request), self._forward

    def _forward(self, request: Request) -> Response:
        connection = http.client.HTTPConnection(*self._upstream, timeout=30)
        try:
            query = f"?{urlencode(request.query)}" if request.query else ""
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(request.method, request.raw_path + query, body=request.body or None, headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            framing = ("content-length", "content-type", "connection")
            forwarded = {k: v for k, v in answer.getheaders() if k.lower() not in framing}
            response = Response(answer.status, body, forwarded)
            response.content_type = answer.getheader("Content-Type") or "application/octet-stream"
            return response
        finally:
            connection.close()

    def default_fault_response(self, request: Request, status: int) -> Response:
        code, message = _ERRORS.get(status, ("InternalError", f"Injected status {status}."))
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
            f"RequestId:{request.request_id}</Message></Error>"
        )
        response = Response(status, body, {"x-ms-error-code": code, "x-ms-request-id": request.request_id})
        response.content_type = "application/xml"
        return response

    def calls_for(self, target: str) -> Counter[str]:
        """Requests per hop that touched ``target``'s record blob."""
        blob = f"/targets/{target}.json"
        return Counter(r.hop for r in self.requests if r.path.endswith(blob))


def _hop(request: Request) -> str:
    query = {k.lower(): v for k, v in request.query.items()}
    if query.get("comp") == "lease":
        action = (request.header("x-ms-lease-action") or "").lower()
        return action if action in ("acquire", "renew", "release", "break") else "other"
    if query.get("restype") == "container" and request.method == "PUT" and "comp" not in query:
        return "create_container"
    if request.method in ("GET", "HEAD") and "comp" not in query:
        return "read"
    if request.method == "PUT" and "comp" not in query:
        return "write"
    return "other"
