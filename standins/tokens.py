"""Unsigned JWT-shaped access tokens shared by the stand-ins.

The managed-identity stand-in issues them; Key Vault and Graph stand-ins read ``aud``, ``exp``, ``roles`` and
``oid`` back. Nothing verifies a signature: the point is to catch the app asking for the wrong resource (e.g. a
global-cloud scope against a US Gov Graph) or using an expired token, not to test cryptography. The shape is a
real JWT so any client-side code that peeks at claims keeps working.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["audience_matches", "bearer_token", "decode_token", "make_token", "token_problem"]

_HEADER = {"alg": "none", "typ": "JWT", "kid": "standin"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(claims: Mapping[str, Any]) -> str:
    """Encode ``claims`` as ``b64url(header).b64url(payload).b64url("standin")``."""
    header = _b64url(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(b'standin')}"


def decode_token(token: str) -> dict[str, Any] | None:
    """Return the payload of a JWT-shaped token, or ``None`` if it is not one (no signature check)."""
    if not isinstance(token, str):
        return None
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def audience_matches(audience: Any, expected: str) -> bool:
    """``aud`` equals ``expected``, ignoring one trailing slash on either side (Azure issues both forms)."""
    return isinstance(audience, str) and audience.rstrip("/") == expected.rstrip("/")


def token_problem(claims: Mapping[str, Any] | None, expected_audience: str, now: float | None = None) -> str | None:
    """Why a decoded token is unacceptable (``"malformed"``, ``"audience"``, ``"expired"``), or ``None`` if fine."""
    if claims is None:
        return "malformed"
    if not audience_matches(claims.get("aud"), expected_audience):
        return "audience"
    exp = claims.get("exp")
    current = time.time() if now is None else now
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= current:
        return "expired"
    return None
