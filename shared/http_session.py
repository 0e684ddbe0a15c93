"""Keep-alive connection pools sized to the fan-out, shared by Graph and Key Vault clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


def pooled_session(pool_size: int) -> requests.Session:
    """A ``requests.Session`` whose pool keeps one connection per concurrent worker.

    urllib3's default keeps 10 per host; with a larger ``concurrency`` extra connections would be
    opened and thrown away on every invocation, paying a TLS handshake each time.
    """
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
