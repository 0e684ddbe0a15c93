"""Keeping secret values out of everything a person or a log pipeline can see.

A value read from Key Vault (or a configured literal) lives in a ``SecretValue`` whose ``str`` and
``repr`` never show it; the one place that unwraps it is the Graph request body. Text that comes
back from remote services passes through ``Redactor.scrub`` before it reaches a result or a log,
in case a service echoes what it was sent.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


class SecretValue:
    """A credential or setting value that prints as ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value: only for the body of a Graph request."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretValue) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretValue cannot be pickled")


class Redactor:
    """Replaces every known secret value in a text with ``***``. Thread-safe; grows as values are read.

    A service that echoes a credential may do so encoded, so each value is also looked for in the forms
    it takes inside JSON (escaped), URLs (``quote`` and ``quote_plus``, either hex case) and base64
    (standard and URL-safe, padded or not, and at any alignment inside a longer encoded text, e.g. a
    ``Basic`` header of ``user:token``). The forms are computed once when a value is added; a scrub looks
    up only the forms whose first characters occur in the text (an index on them), so its cost follows
    the text's length, not the number of values known.
    """

    MIN_LENGTH = 4  # shorter values ("1", "true") would mask ordinary words without protecting anything
    _KEY = 4  # every form is at least this long (see encoded_forms)

    def __init__(self, values: Iterable[SecretValue] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: dict[str, set[str]] = {}  # first _KEY characters -> forms starting with them
        self.add(values)

    def add(self, values: Iterable[SecretValue]) -> None:
        fresh = {v.reveal() for v in values if len(v.reveal()) >= self.MIN_LENGTH}
        with self._lock:
            fresh -= self._values
            if not fresh:
                return
            self._values |= fresh
            for value in fresh:  # once per new value, never on a scrub
                for form in encoded_forms(value):
                    self._forms.setdefault(form[: self._KEY], set()).add(form)

    def scrub(self, text: str) -> str:
        if len(text) < self._KEY:
            return text
        with self._lock:
            if not self._forms:
                return text
            found = {
                form
                for i in range(len(text) - self._KEY + 1)
                for form in self._forms.get(text[i : i + self._KEY], ())
                if text.startswith(form, i)
            }
        for form in sorted(found, key=len, reverse=True):
            text = text.replace(form, MASK)
        return text


def encoded_forms(value: str) -> set[str]:
    """``value`` and the forms it takes when a service echoes it JSON-escaped, URL-encoded or base64-encoded.

    Each form is at least ``Redactor._KEY`` characters long for a value of ``Redactor.MIN_LENGTH``.
    """
    forms = {value}
    for ensure_ascii in (True, False):
        escaped = json.dumps(value, ensure_ascii=ensure_ascii)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/")}  # some serialisers also escape "/"
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="/")):
        forms |= {encoded, _lower_hex(encoded)}
    raw = value.encode("utf-8")
    standard = base64.b64encode(raw).decode("ascii")
    forms |= {standard, standard.rstrip("=")}
    for offset in range(3):  # the value's bytes at each alignment inside a longer encoded text
        core = _base64_core(raw, offset)
        if len(core) >= Redactor._KEY:
            forms.add(core)
    return forms | {f.replace("+", "-").replace("/", "_") for f in forms if f and _is_base64(f)}


def _base64_core(raw: bytes, offset: int) -> str:
    """The base64 characters that depend only on ``raw``'s bytes when ``offset`` bytes come before it."""
    encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode("ascii")
    first = -(-8 * offset // 6)  # the first character whose 6 bits all come from ``raw``
    last = (8 * (offset + len(raw)) - 6) // 6
    return encoded[first : last + 1]


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _is_base64(text: str) -> bool:
    return set(text) <= _BASE64


def _lower_hex(encoded: str) -> str:
    """``%2F`` -> ``%2f``: some encoders write percent-escapes in lower case."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)
