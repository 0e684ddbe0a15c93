"""Keeping secret values out of everything a person or a log pipeline can see.

A value read from Key Vault (or a configured literal) lives in a ``SecretValue`` whose ``str`` and
``repr`` never show it; the one place that unwraps it is the Graph request body. Text that comes
back from remote services passes through ``Redactor.scrub`` before it reaches a result or a log,
in case a service echoes what it was sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

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
    """Replaces every known secret value in a text with ``***``. Thread-safe; grows as values are read."""

    MIN_LENGTH = 4  # shorter values ("1", "true") would mask ordinary words without protecting anything

    def __init__(self, values: Iterable[SecretValue] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._longest_first: tuple[str, ...] = ()
        self.add(values)

    def add(self, values: Iterable[SecretValue]) -> None:
        fresh = {v.reveal() for v in values if len(v.reveal()) >= self.MIN_LENGTH}
        with self._lock:
            if fresh <= self._values:
                return
            self._values |= fresh
            # Sorted here, once per new value, not on every scrub (scrub runs on every Graph answer).
            self._longest_first = tuple(sorted(self._values, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        for value in self._longest_first:
            if value in text:
                text = text.replace(value, MASK)
        return text
