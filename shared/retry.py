"""Retry decisions shared by every outbound call: which answers to retry, how long to wait, and
when to give up because the invocation's deadline would pass.

Graph (``requests``) uses these directly; Key Vault and managed identity use them through
azure-core's ``RetryPolicy`` (see ``shared.keyvault``), so the three hops behave alike.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import DeadlineExceeded

#: Answers worth retrying. 400, 401, 403 and 404 never are.
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetrySettings:
    """Transport tuning. Defaults suit production; app settings override them (see README)."""

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RetrySettings:
        def number(name: str, default: float, low: float, high: float) -> float:
            try:
                value = float(environ.get(name, default))
            except ValueError:
                return default
            return min(max(value, low), high)

        return cls(
            max_attempts=int(number("SYNC_RETRY_MAX_ATTEMPTS", cls.max_attempts, 1, 10)),
            backoff_base=number("SYNC_RETRY_BACKOFF_SECONDS", cls.backoff_base, 0.0, 30.0),
            backoff_max=number("SYNC_RETRY_BACKOFF_MAX_SECONDS", cls.backoff_max, 0.0, 120.0),
            connect_timeout=number("SYNC_HTTP_CONNECT_TIMEOUT_SECONDS", cls.connect_timeout, 0.05, 60.0),
            read_timeout=number("SYNC_HTTP_READ_TIMEOUT_SECONDS", cls.read_timeout, 0.05, 120.0),
        )

    def backoff(self, retry_number: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Exponential backoff with full jitter (retry_number starts at 1)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (retry_number - 1)))
        return rng(0.0, ceiling) if ceiling > 0 else 0.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date. None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class Deadline:
    """The most one invocation may spend. Work that cannot finish inside it fails as retryable."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.expires_at = clock() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, doing: str) -> None:
        if self.expired:
            raise DeadlineExceeded(f"the invocation deadline ({self.seconds:g} s) passed before {doing}")

    def sleep(self, seconds: float, doing: str) -> None:
        """Wait, unless the wait itself would end past the deadline: then fail now, as retryable."""
        if seconds >= self.remaining():
            raise DeadlineExceeded(
                f"waiting {seconds:.1f} s before retrying {doing} would pass the invocation deadline "
                f"({self.seconds:g} s)"
            )
        if seconds > 0:
            time.sleep(seconds)

    def timeout(self, ceiling: float) -> float:
        """A per-request timeout that does not outlive the deadline."""
        return max(0.05, min(ceiling, self.remaining()))


class ThrottleGate:
    """Shared by every worker that calls one service: a 429 closes it for ``Retry-After`` seconds.

    During a fan-out a throttled service then sees one waiting crowd instead of every worker
    retrying on its own schedule.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open_at = 0.0

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._open_at = max(self._open_at, self._clock() + seconds)

    def wait_time(self) -> float:
        with self._lock:
            return max(0.0, self._open_at - self._clock())

    def wait(self, deadline: Deadline, doing: str) -> None:
        while (delay := self.wait_time()) > 0:
            deadline.sleep(delay, doing)
