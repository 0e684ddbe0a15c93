"""Azurite, Microsoft's Azure Storage emulator (npm package ``azurite``), started on a free loopback port.

Not a stand-in: it is the real emulator, with Blob Storage's leases and conditional writes. ``dev.py``
installs it into ``.tools/azurite`` (ignored by git, never deployed); the tests and benches start one
blob service per session with in-memory persistence, so nothing is left on disk.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
#: The emulator's well-known account key (public, in Microsoft's Azurite docs; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOW_TO_GET = (
    "Azurite (the Azure Storage emulator) is not installed: install Node.js 18+ with npm (https://nodejs.org/) and "
    "run `python3 dev.py test` (it installs azurite into .tools/azurite), or `npm install -g azurite`"
)
_LISTENING = re.compile(r"successfully listens on (http://[\d.]+:\d+)")


def find_azurite() -> str | None:
    """The ``azurite-blob`` executable: ``SYNC_AZURITE_BLOB``, the project's ``.tools``, or PATH."""
    candidates = [
        os.environ.get("SYNC_AZURITE_BLOB", ""),
        str(ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"),
        shutil.which("azurite-blob") or "",
    ]
    return next((c for c in candidates if c and Path(c).exists()), None)


def connection_string(blob_endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint.rstrip('/')}/{ACCOUNT};"
    )


class Azurite:
    """One Azurite blob service: ``start`` waits until it listens, ``stop`` ends it."""

    def __init__(self, executable: str | None = None) -> None:
        found = executable or find_azurite()
        if found is None:
            raise FileNotFoundError(HOW_TO_GET)
        self.executable = found
        self.endpoint = ""
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    def start(self, timeout: float = 60.0) -> Self:
        self._process = subprocess.Popen(
            [
                self.executable, "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
                "--skipApiVersionCheck", "--loose", "--disableTelemetry",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        found = threading.Event()

        def read() -> None:
            assert self._process is not None and self._process.stdout is not None
            for line in self._process.stdout:
                self._output.append(line.rstrip())
                match = _LISTENING.search(line)
                if match:
                    self.endpoint = match.group(1)
                    found.set()

        threading.Thread(target=read, name="azurite-output", daemon=True).start()
        started = time.monotonic()
        while not found.wait(0.1):
            if self._process.poll() is not None or time.monotonic() - started > timeout:
                self.stop()
                raise RuntimeError("Azurite did not start: " + " | ".join(self._output[-5:]))
        return self

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoint)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
