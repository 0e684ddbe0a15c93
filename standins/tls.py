"""A throw-away certificate authority for the HTTPS stand-ins.

The app must verify TLS exactly as in production (no ``verify=False`` anywhere), so the stand-ins present a
certificate chained to a test CA, and the tests hand that CA to the clients through ``REQUESTS_CA_BUNDLE`` (honoured
by requests and by azure-core's requests transport).
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import tempfile
from pathlib import Path

import trustme

__all__ = ["TestCertificates"]


class TestCertificates:
    """One trustme CA and one server certificate valid for ``127.0.0.1``, ``localhost`` and ``::1``."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="Provisioning Secret Sync stand-ins")
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1")
        self._directory: Path | None = None
        self._bundle: Path | None = None

    @property
    def ca_bundle_path(self) -> str:
        """Path of a PEM file holding the CA certificate; written once, removed by :meth:`cleanup`."""
        if self._bundle is None or not self._bundle.exists():
            self._directory = Path(tempfile.mkdtemp(prefix="standin-ca-"))
            self._bundle = self._directory / "ca.pem"
            self.ca.cert_pem.write_to_path(str(self._bundle))
        return str(self._bundle)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the stand-in certificate (TLS 1.2+, as Azure requires)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA (for tests using ``urllib``/``http.client`` directly)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def cleanup(self) -> None:
        """Remove the temporary CA bundle."""
        if self._directory is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self._directory)
        self._directory = None
        self._bundle = None
