"""Common loopback HTTP(S) server for the test stand-ins.

The stand-ins exist so that the app's real HTTP stacks (azure-core, msal, requests/urllib3) are exercised over
real sockets: connection pooling, TLS verification, timeouts and connection resets all behave as in production.
That is why this module speaks genuine HTTP/1.1 with keep-alive, frames every response with Content-Length,
does TLS handshakes per connection (in the connection's own thread, so one stuck client cannot block accepting)
and can misbehave on purpose at the transport level (reset, stall, slow) as well as at the HTTP level (status).

Only the standard library is used, so the stand-ins add no dependency the product itself does not have.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing import Self
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["Fault", "Request", "RequestRecord", "Response", "StandinServer"]

#: Largest request body accepted; a stand-in never needs more, and a cap keeps a broken client from eating memory.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: A TLS client that does not finish its handshake within this time is dropped (it only ever blocks its own thread).
HANDSHAKE_TIMEOUT = 10.0
#: Idle keep-alive connections are closed after this long, so abandoned client pools do not pin threads forever.
IDLE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Fault:
    """A misbehaviour to inject into the next request(s) of one hop.

    Build one with the class methods; the fields are an implementation detail. Faults other than ``slow`` are
    applied *instead of* processing the request, so they never cause a side effect on the stand-in's state.
    """

    kind: str
    code: int | None = None
    retry_after: str | None = None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    raw_body: bytes | None = None
    content_type: str | None = None

    @classmethod
    def status(
        cls,
        code: int,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        raw_body: bytes | None = None,
        content_type: str | None = None,
    ) -> Fault:
        """Answer with ``code`` (and the service's error body unless ``body`` is given) without processing.

        ``retry_after`` is sent verbatim as ``Retry-After`` so tests can use seconds or an HTTP-date.
        ``raw_body`` sends these exact bytes instead (``b""`` for an empty body, a gateway's HTML page, text
        that is not JSON), with ``content_type`` (none for an empty body).
        """
        if not 100 <= code <= 599:
            raise ValueError(f"not an HTTP status code: {code}")
        if raw_body is not None and body is not None:
            raise ValueError("give body or raw_body, not both")
        return cls(
            "status",
            code=code,
            retry_after=retry_after,
            body=body,
            headers=headers,
            raw_body=raw_body,
            content_type=content_type,
        )

    @classmethod
    def gateway_page(cls, code: int = 502) -> Fault:
        """An HTML error page, as a load balancer or a proxy in front of the service answers."""
        title = f"{code} {HTTPStatus(code).phrase}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
        ).encode()
        return cls.status(code, raw_body=page, content_type="text/html")

    @classmethod
    def reset(cls) -> Fault:
        """Close the TCP connection abruptly (RST, no response): what a crashed proxy or a dropped NAT entry does."""
        return cls("reset")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        """Read the request, say nothing for ``seconds``, then close: the client should hit its read timeout."""
        return cls("stall", seconds=float(seconds))

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds`` and then process and answer normally: the side effect happens even if the client gave up.

        This is the case that makes retries dangerous (a timed-out PUT may still have been applied).
        """
        return cls("slow", seconds=float(seconds))

    def label(self) -> str:
        """Short text for :attr:`RequestRecord.fault`, e.g. ``status:429`` or ``stall``."""
        return f"status:{self.code}" if self.kind == "status" else self.kind


@dataclass
class RequestRecord:
    """What one request looked like and how the stand-in dealt with it.

    ``body`` may hold secret values (that is what the app sends to Graph), so :meth:`__repr__` shows only its size:
    tests assert that secret values never reach any output, and a failing assertion prints records.
    """

    method: str
    path: str
    query: dict[str, str]
    hop: str
    status: int | None
    time: float
    authorized: bool
    body: Any
    connection_id: int
    fault: str | None = None
    body_bytes: int = field(default=0, compare=False)
    qualifier: str | None = None  # see StandinServer.fault_qualifier
    ended: float = field(default=0.0, compare=False)  # when it was answered (monotonic), for overlap counts

    def matches(self, hop: str) -> bool:
        """``hop`` or ``hop@qualifier`` (see :meth:`StandinServer.inject`)."""
        base, _, qualifier = hop.partition("@")
        return self.hop == base and (not qualifier or self.qualifier == qualifier)

    def __repr__(self) -> str:
        return (
            f"RequestRecord(method={self.method!r}, path={self.path!r}, query={self.query!r}, hop={self.hop!r}, "
            f"status={self.status!r}, time={self.time!r}, authorized={self.authorized!r}, "
            f"body=<{self.body_bytes} bytes>, connection_id={self.connection_id!r}, fault={self.fault!r})"
        )

    __str__ = __repr__


class _NoJson:
    """Sentinel type: the request body was present but was not valid JSON."""

    def __repr__(self) -> str:
        return "<invalid JSON>"


INVALID_JSON: Any = _NoJson()


@dataclass
class Request:
    """A parsed request as the stand-in handlers see it."""

    method: str
    raw_path: str
    segments: list[str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any
    connection_id: int
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup (``http.client.HTTPMessage`` already is; plain dicts in tests are not)."""
        value = self.headers.get(name)
        if value is not None:
            return value
        lowered = name.lower()
        for key, candidate in self.headers.items():
            if key.lower() == lowered:
                return candidate
        return None


@dataclass
class Response:
    """What a handler wants sent back. A ``dict``/``list`` body is serialised as JSON."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


Handler = Callable[[Request], Response]


class _BadRequestFraming(Exception):
    """The request's body framing (Content-Length / chunked) is unusable; the connection cannot be kept."""


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that counts connections and does TLS in the connection's thread."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = False

    def __init__(self, owner: StandinServer, ssl_context: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.ssl_context = ssl_context
        self._pending: dict[socket.socket, int] = {}
        self._pending_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup (``getfqdn``), which can take seconds on some hosts."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        connection_id = self.owner._connection_accepted()
        with self._pending_lock:
            self._pending[sock] = connection_id
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._pending_lock:
            connection_id = self._pending.pop(request, 0)
        conn: socket.socket = request
        self.owner._track(request)  # tracked from the start, so stop() can also cut a hanging handshake
        try:
            if self.ssl_context is not None:
                request.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    conn = self.ssl_context.wrap_socket(request, server_side=True)
                except (OSError, ValueError):
                    return
                self.owner._untrack(request)
                self.owner._track(conn)
            handler = _Handler(conn, client_address, self, connection_id)
            if handler.aborted:
                return
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_WR)
        finally:
            self.owner._untrack(request)
            self.owner._untrack(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a client going away mid-request is routine for fault tests, not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    """Thin transport: parses HTTP/1.1, hands a :class:`Request` to the owning stand-in, writes its answer."""

    protocol_version = "HTTP/1.1"
    server_version = "Standin/1.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True
    server: _HTTPServer

    def __init__(self, request: Any, client_address: Any, server: _HTTPServer, connection_id: int) -> None:
        self.connection_id = connection_id
        self.aborted = False
        super().__init__(request, client_address, server)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; tests inspect :attr:`StandinServer.requests` instead."""

    def handle(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError, ValueError, ssl.SSLError):
            self.handle_one_request()
            while not self.close_connection and not self.aborted:
                self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            try:
                body = self._read_body()
            except _BadRequestFraming as exc:
                self.close_connection = True
                self.write_response(Response(400, {"error": {"code": "BadRequest", "message": str(exc)}}))
                return
            self.server.owner._serve(self, body)
            if not self.aborted:
                self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        transfer_encoding = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in transfer_encoding:
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise _BadRequestFraming("invalid Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise _BadRequestFraming("unacceptable Content-Length")
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("client closed the connection mid-body")
        return data

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequestFraming("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequestFraming("body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(3)

    def write_response(self, response: Response) -> None:
        payload = response.encode()
        status = response.status
        self.send_response(status)
        has_body = not (100 <= status < 200 or status in (204, 304))
        for name, value in response.headers.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
        if has_body:
            if payload:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # Head and body go out in one write: two small segments would meet Nagle + delayed ACK (~40 ms per request).
        self._headers_buffer.append(b"\r\n")
        if has_body and self.command != "HEAD":
            self._headers_buffer.append(payload)
        self.flush_headers()

    def abort(self) -> None:
        """Make the close an RST (SO_LINGER 0) and stop using the connection; finish_request does the close."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.aborted = True


class StandinServer:
    """Base class of every stand-in: lifecycle, request log, fault queue, latency and connection counting.

    Subclasses implement :meth:`route` (hop name and handler for a request) and may override the hooks that shape
    service-specific headers and error bodies.
    """

    #: Hop names a subclass serves; :meth:`inject` rejects others so a typo cannot silently inject nothing.
    HOPS: ClassVar[frozenset[str]] = frozenset()
    #: Hop name for requests that match no route.
    UNKNOWN_HOP: ClassVar[str] = "unknown"

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._records: list[RequestRecord] = []
        self._faults: dict[str, deque[list[Any]]] = {}
        self._open: set[socket.socket] = set()
        self._connection_seq = 0
        self._connections_opened = 0
        self._generation = 0
        self._arrivals: dict[str, int] = {}
        self.latency: float = 0.0

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Bind an ephemeral 127.0.0.1 port and serve in a daemon thread. Idempotent."""
        with self._lock:
            if self._httpd is not None:
                if self._stopping.is_set():
                    raise RuntimeError(f"{type(self).__name__} was stopped; create a new one")
                return self
            self._stopping.clear()
            self._httpd = _HTTPServer(self, self._ssl_context)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self._httpd.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, and cut open keep-alive connections so no client keeps talking to a stopped stand-in."""
        with self._lock:
            httpd, thread = self._httpd, self._thread
            if httpd is None:
                return
            self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            open_connections = list(self._open)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None and not self._stopping.is_set()

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``https://127.0.0.1:54321``."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget requests, faults, counters and latency, and put the service state back to its initial value."""
        with self._lock:
            self._generation += 1
            self._records.clear()
            self._arrivals.clear()
            self._faults.clear()
            self._connections_opened = 0
            self.latency = 0.0
            self._reset_state()

    def _reset_state(self) -> None:
        """Subclass hook: restore service state (called with the lock held)."""

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first (a copy, so iterating is safe while requests arrive)."""
        with self._lock:
            return list(self._records)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start/reset: the measure of keep-alive and TLS session reuse."""
        with self._lock:
            return self._connections_opened

    def arrivals(self, hop: str) -> int:
        """Requests of ``hop`` that arrived since start/reset, answered or not yet (a slow one is still inside)."""
        with self._lock:
            return self._arrivals.get(hop, 0)

    def hop_count(self, hop: str) -> int:
        """How many requests of ``hop`` were answered or faulted."""
        with self._lock:
            return sum(1 for record in self._records if record.matches(hop))

    def records(self, hop: str | None = None) -> list[RequestRecord]:
        """The request log, optionally for one hop."""
        with self._lock:
            return [record for record in self._records if hop is None or record.matches(hop)]

    # ----------------------------------------------------------------- faults

    def inject(self, hop: str, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests of ``hop`` (``-1``: every one until :meth:`clear_faults`).

        Faults queued for the same hop apply in the order they were injected. ``hop@qualifier`` narrows a
        fault to the requests of that hop the stand-in qualifies so (``fault_qualifier``): the identity
        stand-in's ``token@graph`` and ``token@keyvault`` hit one resource's token requests, whatever
        order concurrent requests arrive in. A qualified fault is taken before an unqualified one.
        """
        if hop.partition("@")[0] not in self.HOPS and hop != self.UNKNOWN_HOP:
            raise ValueError(f"{type(self).__name__} has no hop {hop!r}; known: {sorted(self.HOPS)}")
        if times == 0 or times < -1:
            raise ValueError("times must be a positive count or -1 (forever)")
        with self._lock:
            self._faults.setdefault(hop, deque()).append([fault, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def fault_qualifier(self, request: Request) -> str | None:
        """Subclass hook: what ``hop@qualifier`` faults match for this request (see :meth:`inject`)."""
        return None

    def _qualifier(self, request: Request) -> str | None:
        try:
            return self.fault_qualifier(request)
        except Exception:  # noqa: BLE001 - a qualifier bug must not lose the record
            return None

    def _take_fault(self, hop: str, request: Request | None = None) -> Fault | None:
        qualifier = self.fault_qualifier(request) if request is not None else None
        with self._lock:
            queue = self._faults.get(f"{hop}@{qualifier}") if qualifier else None
            if not queue:
                queue = self._faults.get(hop)
            if not queue:
                return None
            entry = queue[0]
            fault: Fault = entry[0]
            if entry[1] != -1:
                entry[1] -= 1
                if entry[1] == 0:
                    queue.popleft()
            return fault

    # ----------------------------------------------------------------- hooks for subclasses

    def route(self, request: Request) -> tuple[str, Handler]:
        """Return the hop name and the handler for ``request``; subclasses must implement it."""
        raise NotImplementedError

    def common_headers(self, request: Request) -> dict[str, str]:
        """Headers every response of this service carries (request ids and the like)."""
        return {}

    def error_response(self, request: Request, status: int, code: str, message: str) -> Response:
        """A response in this service's error shape."""
        return Response(status, {"error": {"code": code, "message": message}})

    def fault_response(self, request: Request, fault: Fault) -> Response:
        """The answer to an injected status fault: the fault's body or the service's default for that status."""
        status = int(fault.code or 500)
        if fault.raw_body is not None:
            response = Response(status, bytes(fault.raw_body), content_type=fault.content_type or "text/plain")
        elif fault.body is not None:
            response = Response(status, dict(fault.body))
        else:
            response = self.default_fault_response(request, status)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = fault.retry_after
        if fault.headers:
            response.headers.update(fault.headers)
        return response

    def default_fault_response(self, request: Request, status: int) -> Response:
        """Service-specific default body for an injected status."""
        return self.error_response(request, status, "Fault", f"Injected status {status}")

    def internal_error(self, request: Request) -> Response:
        """The answer when a handler raised: a generic 500 that never includes request data."""
        return self.error_response(request, 500, "InternalServerError", "The stand-in failed to handle the request.")

    def invalid_json(self, request: Request) -> Response:
        return self.error_response(request, 400, "BadRequest", "The request body is not valid JSON.")

    # ----------------------------------------------------------------- serving

    def _connection_accepted(self) -> int:
        with self._lock:
            self._connection_seq += 1
            self._connections_opened += 1
            return self._connection_seq

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up early if the stand-in is being stopped."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _record(
        self, request: Request, hop: str, status: int | None, fault: Fault | None, started: float, generation: int
    ) -> bool:
        """Append a record unless a :meth:`reset` happened since the request arrived; report whether it did."""
        record = RequestRecord(
            method=request.method,
            path=request.raw_path,
            query=dict(request.query),
            hop=hop,
            status=status,
            time=started,
            authorized=request.header("Authorization") is not None,
            body=None if request.json is INVALID_JSON else request.json,
            connection_id=request.connection_id,
            fault=fault.label() if fault is not None else None,
            body_bytes=len(request.body),
            qualifier=self._qualifier(request),
            ended=time.monotonic(),
        )
        with self._lock:
            if generation != self._generation:
                return False
            self._records.append(record)
            return True

    def _serve(self, handler: _Handler, body: bytes) -> None:
        """Process one parsed request: route, latency, faults, handler, record, respond.

        A request still sleeping (latency, ``slow``) when the test calls :meth:`reset` is dropped with a connection
        reset instead of being processed: it belongs to the previous test and must not touch the new state or log.
        """
        started = time.monotonic()
        with self._lock:
            generation = self._generation
        request = _build_request(handler, body)
        try:
            hop, route_handler = self.route(request)
        except Exception:  # noqa: BLE001 - a routing bug must become a 500, never kill the connection thread
            hop, route_handler = self.UNKNOWN_HOP, self.internal_error
        with self._lock:
            if generation == self._generation:
                self._arrivals[hop] = self._arrivals.get(hop, 0) + 1
        self._sleep(self.latency)
        fault = self._take_fault(hop, request)
        if fault is not None and fault.kind == "reset":
            self._record(request, hop, None, fault, started, generation)
            handler.abort()
            return
        if fault is not None and fault.kind == "stall":
            self._record(request, hop, None, fault, started, generation)
            self._sleep(fault.seconds)
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "slow":
            self._sleep(fault.seconds)
        if self._stopping.is_set() or generation != self._generation:
            handler.abort()
            return
        if fault is not None and fault.kind == "status":
            response = self._safe(lambda: self.fault_response(request, fault), request)
        elif request.json is INVALID_JSON and hop != self.UNKNOWN_HOP:
            response = self._safe(lambda: self.invalid_json(request), request)
        else:
            response = self._safe(lambda: route_handler(request), request)
        headers = self._safe_headers(request)
        headers.update(response.headers)
        response.headers = headers
        self._record(request, hop, response.status, fault, started, generation)
        handler.write_response(response)

    def _safe(self, produce: Callable[[], Response], request: Request) -> Response:
        try:
            return produce()
        except Exception:  # noqa: BLE001 - any handler bug becomes a generic 500 (never echoing request data)
            return self.internal_error(request)

    def _safe_headers(self, request: Request) -> dict[str, str]:
        try:
            return dict(self.common_headers(request))
        except Exception:  # noqa: BLE001 - headers are decoration; a bug there must not lose the response
            return {}


def _build_request(handler: _Handler, body: bytes) -> Request:
    target = handler.path
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        raw_path, query_text = parts.path or "/", parts.query
    else:
        raw_path, _, query_text = target.partition("?")
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    parsed: Any = None
    if body.strip():
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            parsed = INVALID_JSON
    return Request(
        method=handler.command,
        raw_path=raw_path,
        segments=split_path(raw_path),
        query=query,
        headers=handler.headers,
        body=body,
        json=parsed,
        connection_id=handler.connection_id,
    )


def split_path(raw_path: str) -> list[str]:
    """Split a raw path into percent-decoded segments, dropping empty ones.

    Splitting *before* decoding keeps an encoded ``%2F`` inside a segment (job ids are opaque and URL-encoded).
    """
    return [unquote(part) for part in raw_path.split("/") if part]


def new_guid() -> str:
    """A random GUID in the lower-case form Azure uses."""
    return str(uuid.uuid4())
