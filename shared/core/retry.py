"""Retry decisions shared by every outbound call: which answers to retry, how long to wait, and
when to give up because the invocation's deadline would pass.

Graph (``requests``) uses these directly; Key Vault and managed identity use them through
azure-core's ``RetryPolicy`` (see ``shared.clients.keyvault``), so the three hops behave alike.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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
        if self.expired:
            raise DeadlineExceeded(f"the invocation deadline ({self.seconds:g} s) passed before retrying {doing}")
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
    retrying on its own schedule. When it reopens, one request goes first (the probe) and the others
    wait for its answer, so a throttling that outlasts its ``Retry-After`` costs one more 429 per
    window instead of one per worker. The caller reports every attempt that did not end in a 429
    with ``passed`` (a 429 with ``close_for``); a probe that never reports back loses its turn
    after ``probe_lease`` seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, probe_lease: float = 30.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._open_at = 0.0
        self._throttled = False  # a 429 closed the gate and no request has passed since
        self._probe: object | None = None  # the turn of the request testing whether it is over
        self._probe_until = 0.0
        self._probe_lease = probe_lease
        self._mine = threading.local()

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._open_at = max(self._open_at, self._clock() + seconds)
            self._throttled = True
            if self._holds_probe():
                self._probe = None
            self._changed.notify_all()

    def passed(self) -> None:
        """This thread's request ended without a 429 (another answer, or none): a probe opens the gate."""
        with self._lock:
            if self._holds_probe():
                self._probe = None
                self._throttled = False
                self._changed.notify_all()

    def wait_time(self) -> float:
        with self._lock:
            return max(0.0, self._open_at - self._clock())

    def wait(self, deadline: Deadline, doing: str) -> None:
        while True:
            with self._lock:
                now = self._clock()
                delay = self._open_at - now
                if delay <= 0:
                    if not self._throttled or self._holds_probe():
                        return
                    if self._probe is None or now >= self._probe_until:
                        self._probe = self._mine.turn = object()
                        self._probe_until = now + self._probe_lease
                        return
                    deadline.check(doing)  # the probe is out: wait for its answer
                    self._changed.wait(timeout=min(self._probe_until - now, deadline.remaining()))
                    continue
            deadline.sleep(delay, doing)

    def _holds_probe(self) -> bool:
        return self._probe is not None and getattr(self._mine, "turn", None) is self._probe


#: The deadline of the invocation running in this thread. SDK pipelines (Key Vault, and the managed-identity
#: token request that azure-identity and msal run on our behalf) cannot be handed it per call, so they read it here.
_CURRENT_DEADLINE: ContextVar[Deadline | None] = ContextVar("sync_deadline", default=None)


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[Deadline]:
    """Make ``deadline`` the one that SDK calls made from this thread observe (see ``DeadlineRetryPolicy``)."""
    token = _CURRENT_DEADLINE.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT_DEADLINE.reset(token)


def current_deadline() -> Deadline | None:
    return _CURRENT_DEADLINE.get()


def deadline_retry_policy_class(settings: RetrySettings, doing: str) -> type[Any]:
    """An azure-core ``RetryPolicy`` class that behaves like the Graph client's retries.

    azure-core's own policy would retry any 4xx that carries ``Retry-After``, sleep a ``Retry-After`` of minutes
    whatever the invocation has left, back off without jitter, and keep the transport's 300 s default timeouts.
    This one retries only ``RETRYABLE_STATUSES`` and connection faults, waits ``Retry-After`` or jittered backoff
    through the invocation's ``Deadline`` (a wait past it fails at once as ``DeadlineExceeded``), and bounds every
    attempt's connect and read timeouts by the configured values and by the time left. The deadline comes from the
    ``sync_deadline`` request option or, failing that, from ``deadline_scope``.

    A class rather than an instance because azure-identity builds its pipeline from ``retry_policy_class``.
    """
    from azure.core.pipeline.policies import RetryPolicy

    retries = settings.max_attempts - 1

    class DeadlineRetryPolicy(RetryPolicy):
        def __init__(self, **kwargs: Any) -> None:
            kwargs.update(
                retry_total=retries,
                retry_connect=retries,
                retry_read=retries,
                retry_status=retries,
                retry_backoff_factor=settings.backoff_base,
                retry_backoff_max=settings.backoff_max,
            )
            super().__init__(**kwargs)

        def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
            deadline: Deadline | None = options.pop("sync_deadline", None) or current_deadline()
            retry_settings = super().configure_retries(options)
            retry_settings["sync_deadline"] = deadline
            retry_settings["sync_options"] = options  # the per-request options the transport reads on every attempt
            if deadline is not None:
                deadline.check(doing)
            self._bound_timeouts(retry_settings)
            return retry_settings

        @staticmethod
        def _bound_timeouts(retry_settings: dict[str, Any]) -> None:
            deadline: Deadline | None = retry_settings.get("sync_deadline")
            options: dict[str, Any] = retry_settings["sync_options"]
            connect, read = settings.connect_timeout, settings.read_timeout
            if deadline is not None:
                connect, read = deadline.timeout(connect), deadline.timeout(read)
            options["connection_timeout"] = connect
            options["read_timeout"] = read

        def is_retry(self, settings_: dict[str, Any], response: Any) -> bool:
            if response.http_response.status_code not in RETRYABLE_STATUSES:
                return False  # 400, 401, 403, 404 (and the like) never, even with Retry-After
            return super().is_retry(settings_, response)

        def sleep(self, retry_settings: dict[str, Any], transport: Any, response: Any = None) -> None:
            delay = self.get_retry_after(response) if response is not None else None
            if delay is None:
                delay = settings.backoff(max(1, len(retry_settings["history"])))
            deadline: Deadline | None = retry_settings.get("sync_deadline")
            if deadline is None:
                if delay > 0:
                    transport.sleep(delay)
            else:
                deadline.sleep(delay, doing)
            self._bound_timeouts(retry_settings)

    return DeadlineRetryPolicy
