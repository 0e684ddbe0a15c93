"""Keep-alive connection pools sized to the fan-out, shared by Graph and Key Vault clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


def pooled_session(pool_size: int) -> requests.Session:
    """A ``requests.Session`` whose pool keeps one connection per concurrent worker.

    urllib3's default keeps 10 per host; with a larger ``concurrency`` extra connections would be
    opened and thrown away on every invocation, paying a TLS handshake each time.
    """
    from requests.adapters import HTTPAdapter

    session = _session_class()()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 1), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_SESSION_CLASS: type[requests.Session] | None = None


def _session_class() -> type[requests.Session]:
    """``requests.Session`` that looks up environment proxies once per origin instead of on every request.

    requests scans the whole environment (decoding every value, an inline ``SYNC_CONFIG`` included)
    twice per request to find ``*_proxy`` variables: a third of the app's CPU per request in a fan-out.
    The proxy environment of a worker process does not change (an app-setting change restarts it),
    so the answer is kept per scheme, host and ``no_proxy``. ``REQUESTS_CA_BUNDLE`` is still read on
    every request, as requests does (a single lookup).
    """
    global _SESSION_CLASS
    if _SESSION_CLASS is None:
        import os
        import threading
        from urllib.parse import urlsplit

        import requests
        from requests.sessions import merge_setting
        from requests.utils import get_environ_proxies

        class EnvironmentCachingSession(requests.Session):
            def __init__(self) -> None:
                super().__init__()
                self._environ_proxies: dict[tuple[str, str, str | None], dict[str, str]] = {}
                self._environ_lock = threading.Lock()

            def merge_environment_settings(
                self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
            ) -> dict[str, Any]:
                # requests.Session.merge_environment_settings, with get_environ_proxies cached.
                if self.trust_env:
                    no_proxy = proxies.get("no_proxy") if proxies is not None else None
                    parts = urlsplit(url)
                    key = (parts.scheme.lower(), parts.netloc.lower(), no_proxy)
                    with self._environ_lock:
                        env_proxies = self._environ_proxies.get(key)
                    if env_proxies is None:
                        env_proxies = dict(get_environ_proxies(url, no_proxy=no_proxy))
                        with self._environ_lock:
                            self._environ_proxies[key] = env_proxies
                    if proxies is not None:
                        for name, value in env_proxies.items():
                            proxies.setdefault(name, value)
                    if verify is True or verify is None:
                        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
                return {
                    "proxies": merge_setting(proxies, self.proxies),
                    "stream": merge_setting(stream, self.stream),
                    "verify": merge_setting(verify, self.verify),
                    "cert": merge_setting(cert, self.cert),
                }

        _SESSION_CLASS = EnvironmentCachingSession
    return _SESSION_CLASS
