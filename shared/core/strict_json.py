"""JSON with one value per key: what the config and request bodies are parsed with.

``json.loads`` keeps the last of two equal keys, so ``{"dryRun": true, "dryRun": false}`` would push for
real and a second ``resumeQuarantined`` would silently win. Both readers refuse such a document instead.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    """An object carries ``key`` twice. The key is kept for the caller to echo (or not) in its own shape."""

    def __init__(self, key: str) -> None:
        super().__init__("duplicate key")
        self.key = key


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def loads(text: str) -> Any:
    """``json.loads`` that raises ``DuplicateKey`` (a ``ValueError``) for a key given twice in one object."""
    return json.loads(text, object_pairs_hook=_one_value_per_key)
