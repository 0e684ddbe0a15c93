"""The function app's process-wide state, kept import-light for cold start.

Importing this module imports nothing from the Azure SDKs; ``service()`` builds the real thing on
the first invocation and reuses it afterwards.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import SyncService


class AppState:
    def __init__(self, app_root: Path) -> None:
        self.app_root = app_root
        self._service: SyncService | None = None
        self._lock = threading.Lock()

    def service(self) -> SyncService:
        with self._lock:
            if self._service is None:
                from ..sync.runtime import Worker
                from .service import SyncService

                self._service = SyncService(Worker(self.app_root))
            return self._service

    def reset(self) -> None:
        """Forget everything, as a new worker process would (credential, clients, ledger)."""
        with self._lock:
            self._service = None

    @staticmethod
    def invocation_id(context: Any) -> str:
        value = getattr(context, "invocation_id", None)
        return value if isinstance(value, str) and value else str(uuid.uuid4())
