"""The Python language worker process, as the Functions host starts it for Python 3.13+.

From Python 3.13 on, Azure runs Microsoft's *proxy worker* (``workers/proxy_worker/`` in
Azure/azure-functions-python-worker): a thin process that connects to the host, receives FunctionRpc
``StreamingMessage``s and hands each one to the worker runtime library the app pins in ``requirements.txt``
(``azure_functions_runtime``). Indexing, binding conversion, invocation and response conversion all happen in
that library. This script is our copy of the proxy worker's *calling convention* — the library, the app and
everything they do are the real thing:

- started as ``python worker_process.py --host H --port P --workerId W --requestId R`` (the proxy worker's
  arguments), cwd = the function app directory, app settings in the environment;
- connects, sends ``StartStream(worker_id)``, then dispatches every incoming message as its own asyncio task
  (``Dispatcher._dispatch_grpc_request``) and sends each response on the same stream;
- on ``WorkerInitRequest``: imports ``azure_functions_runtime``, puts the app directory on ``sys.path`` the way
  ``DependencyManager.prioritize_customer_dependencies`` does (appended, from ``AzureWebJobsScriptRoot``), calls
  ``start_threadpool_executor()`` and then ``worker_init_request`` with
  ``WorkerRequest(name, request=<the StreamingMessage>, properties={"protos": ..., "host": ...})``; the other
  handlers get ``WorkerRequest(name, request=<the StreamingMessage>)`` with no properties, exactly as there;
- wraps responses the same way (``request_id`` = the worker's ``--requestId``, except the metadata response,
  which echoes the request's, as the proxy worker does);
- logging as ``Dispatcher.dispatch_forever`` sets it up: the root logger at INFO (DEBUG with
  ``PYTHON_ENABLE_DEBUG_LOGGING``) gets a handler that turns every record into an ``RpcLog`` message (level,
  category = logger name, ``log_category`` System/User by the same prefixes, the formatted message, the
  invocation id) sent to the host; customer records also go to stdout, as ``proxy_worker.logging.setup`` does.

Deviations, each because it is transport rather than behaviour:

- **no gRPC**: the same serialized ``StreamingMessage`` bytes travel over a loopback TCP socket, each one
  prefixed with its length (4 bytes, big-endian). gRPC would add a server, a channel and their threads to the
  test without touching anything the library or the app does;
- the compiled protos come from ``--protos DIR`` (the proxy worker ships them as ``proxy_worker.protos``);
- no dependency isolation between worker and app packages (one virtual environment holds both here), no
  Linux Consumption placeholder handling, no Python end-of-life warning, no ``WorkerStatusRequest``.

When the host closes the connection the worker stops the library's threadpool (``Dispatcher.stop``) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib
import logging
import os
import queue
import socket
import struct
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

SYSTEM_LOG_PREFIX = "conformance_worker"  # the proxy worker's is "proxy_worker"
RUNTIME_LOG_PREFIX = "azure_functions_runtime"
SDK_LOG_PREFIX = "azure.functions"
CONSOLE_LOG_PREFIX = "LanguageWorkerConsoleLog"

logger = logging.getLogger(SYSTEM_LOG_PREFIX)
_STOP = object()


@dataclass
class WorkerRequest:
    """What the proxy worker hands the library (``proxy_worker.dispatcher.WorkerRequest``)."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


def is_system_log_category(name: str) -> bool:
    return name.startswith((SYSTEM_LOG_PREFIX, SDK_LOG_PREFIX, RUNTIME_LOG_PREFIX))


class CustomerLogFilter(logging.Filter):
    """Only customer records go to stdout (``proxy_worker.logging.CustomerLogFilter``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not is_system_log_category(record.name)


class Connection:
    """Length-prefixed ``StreamingMessage`` frames over a socket; one writer thread keeps frames whole and ordered."""

    def __init__(self, sock: socket.socket, protos: ModuleType) -> None:
        self._sock = sock
        self._protos = protos
        self.outgoing: queue.Queue[Any] = queue.Queue()
        self._writer = threading.Thread(name="rpc-writer", target=self._write_forever, daemon=True)
        self._writer.start()

    def _write_forever(self) -> None:
        while True:
            message = self.outgoing.get()
            if message is _STOP:
                return
            data = message.SerializeToString()
            try:
                self._sock.sendall(struct.pack(">I", len(data)) + data)
            except OSError:
                return

    def read(self) -> Any | None:
        header = self._read_exactly(4)
        if header is None:
            return None
        body = self._read_exactly(struct.unpack(">I", header)[0])
        if body is None:
            return None
        message = self._protos.StreamingMessage()
        message.ParseFromString(body)
        return message

    def _read_exactly(self, size: int) -> bytes | None:
        chunks, remaining = [], size
        while remaining:
            try:
                chunk = self._sock.recv(min(remaining, 1 << 20))
            except OSError:  # a reset ends the stream too (the host closed it with our last logs unread)
                return None
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.outgoing.put(_STOP)
        self._writer.join(timeout=10)
        self._sock.close()


#: The invocation a log record belongs to, for records emitted on the event loop (the proxy worker keeps it on a
#: custom asyncio Task); records from the library's threadpool use the library's own ``invocation_id_cv``.
_current_invocation: contextvars.ContextVar[str | None] = contextvars.ContextVar("invocation", default=None)


class RpcLogHandler(logging.Handler):
    """``AsyncLoggingHandler`` + ``Dispatcher.on_logging``: each record becomes an ``RpcLog`` for the host."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__()
        self._dispatcher = dispatcher

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._dispatcher.on_logging(record, self.format(record))
        except Exception:  # noqa: BLE001 - a log record must never break the worker
            self.handleError(record)


class Dispatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop, connection: Connection, protos: ModuleType, args: Any) -> None:
        self._loop = loop
        self._connection = connection
        self._protos = protos
        self._host = args.host
        self.worker_id = args.worker_id
        self.request_id = args.request_id
        self._library: ModuleType | None = None
        levels = protos.RpcLog
        self._levels = [
            (logging.CRITICAL, levels.Critical),
            (logging.ERROR, levels.Error),
            (logging.WARNING, levels.Warning),
            (logging.INFO, levels.Information),
            (logging.DEBUG, levels.Debug),
        ]

    # --- logging ------------------------------------------------------------------------------------

    def on_logging(self, record: logging.LogRecord, formatted: str) -> None:
        rpc_log = self._protos.RpcLog
        level = next((rpc for floor, rpc in self._levels if record.levelno >= floor), getattr(rpc_log, "None"))
        category = rpc_log.RpcLogCategory.Value("System" if is_system_log_category(record.name) else "User")
        log = {"level": level, "message": formatted, "category": record.name, "log_category": category}
        invocation_id = self._current_invocation_id()
        if invocation_id:
            log["invocation_id"] = invocation_id
        self._send(self._protos.StreamingMessage(request_id=self.request_id, rpc_log=rpc_log(**log)))

    def _current_invocation_id(self) -> str | None:
        value = _current_invocation.get()
        if value is None and self._library is not None:
            value = self._library.invocation_id_cv.get()
        return value

    def _send(self, message: Any) -> None:
        self._connection.outgoing.put_nowait(message)

    # --- the stream ---------------------------------------------------------------------------------

    async def dispatch_forever(self) -> None:
        self._send(self._protos.StreamingMessage(request_id=self.request_id, start_stream=self._protos.StartStream(
            worker_id=self.worker_id)))
        root = logging.getLogger()
        debug = os.environ.get("PYTHON_ENABLE_DEBUG_LOGGING", "").lower() in ("true", "1", "yes")
        root.setLevel(logging.DEBUG if debug else logging.INFO)
        handler = RpcLogHandler(self)
        root.addHandler(handler)
        logger.info("Switched to RPC logging.")
        done = self._loop.create_future()
        threading.Thread(name="rpc-reader", target=self._read_forever, args=(done,), daemon=True).start()
        try:
            await done
            # Requests still running finish before the threadpool stops (the host closed the stream).
            pending = [t for t in asyncio.all_tasks(self._loop) if t is not asyncio.current_task()]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            root.removeHandler(handler)
            if self._library is not None:
                self._library.stop_threadpool_executor()

    def _read_forever(self, done: asyncio.Future[None]) -> None:
        while True:
            message = self._connection.read()
            if message is None:
                self._loop.call_soon_threadsafe(done.set_result, None)
                return
            self._loop.call_soon_threadsafe(self._loop.create_task, self._dispatch(message))

    async def _dispatch(self, request: Any) -> None:
        handlers = {
            "worker_init_request": self._handle_worker_init_request,
            "functions_metadata_request": self._handle_functions_metadata_request,
            "function_load_request": self._handle_function_load_request,
            "invocation_request": self._handle_invocation_request,
        }
        kind = request.WhichOneof("content")
        handler = handlers.get(kind)
        if handler is None:
            logger.error("Unknown StreamingMessage content type: %s", kind)
            return
        self._send(await handler(request))

    # --- handlers: the proxy worker's, one to one ----------------------------------------------------

    async def _handle_worker_init_request(self, request: Any) -> Any:
        logger.info("Received WorkerInitRequest, python version %s, request ID %s", sys.version, self.request_id)
        self._prioritize_app_directory(request.worker_init_request.function_app_directory)
        self._library = importlib.import_module("azure_functions_runtime")
        logger.info("Using library: %s, library version: %s", self._library, self._library.version.VERSION)
        self._library.start_threadpool_executor()
        init_request = WorkerRequest(
            name="WorkerInitRequest", request=request, properties={"protos": self._protos, "host": self._host}
        )
        response = await self._library.worker_init_request(init_request)
        return self._protos.StreamingMessage(request_id=self.request_id, worker_init_response=response)

    @staticmethod
    def _prioritize_app_directory(directory: str) -> None:
        """The app's folder goes last on ``sys.path`` (``DependencyManager``: the working directory is appended)."""
        root = os.environ.get("AzureWebJobsScriptRoot", "")  # noqa: SIM112 - the host sets it in this spelling
        working = os.path.abspath(directory or root)
        if working and working not in sys.path:
            sys.path.append(working)
            sys.path_importer_cache.pop(working, None)

    async def _handle_functions_metadata_request(self, request: Any) -> Any:
        logger.info("Received WorkerMetadataRequest, request ID %s, worker id: %s", self.request_id, self.worker_id)
        assert self._library is not None
        response = await self._library.functions_metadata_request(
            WorkerRequest(name="WorkerMetadataRequest", request=request)
        )
        return self._protos.StreamingMessage(request_id=request.request_id, function_metadata_response=response)

    async def _handle_function_load_request(self, request: Any) -> Any:
        load = request.function_load_request
        logger.info("Received WorkerLoadRequest, function_id: %s, function_name: %s", load.function_id,
                    load.metadata.name)  # fmt: skip
        assert self._library is not None
        response = await self._library.function_load_request(WorkerRequest(name="FunctionLoadRequest ",
                                                                           request=request))  # fmt: skip
        return self._protos.StreamingMessage(request_id=self.request_id, function_load_response=response)

    async def _handle_invocation_request(self, request: Any) -> Any:
        invocation = request.invocation_request
        logger.info("Received FunctionInvocationRequest, function_id: %s, invocation_id: %s",
                    invocation.function_id, invocation.invocation_id)  # fmt: skip
        token = _current_invocation.set(invocation.invocation_id)
        try:
            assert self._library is not None
            response = await self._library.invocation_request(
                WorkerRequest(name="FunctionInvocationRequest", request=request)
            )
        finally:
            _current_invocation.reset(token)
        return self._protos.StreamingMessage(request_id=self.request_id, invocation_response=response)


def _setup_console_logging() -> None:
    """``proxy_worker.logging.setup(log_level="INFO", log_destination=None)``: customer records to stdout."""
    formatter = logging.Formatter(f"{CONSOLE_LOG_PREFIX} %(levelname)s: %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if not root.handlers:
        console = logging.StreamHandler(sys.stdout)
        console.setFormatter(formatter)
        console.addFilter(CustomerLogFilter())
        root.addHandler(console)
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(formatter)
    errors.setLevel(logging.ERROR)
    logger.addHandler(errors)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Python Azure Functions worker (conformance suite)")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workerId", dest="worker_id", required=True)
    parser.add_argument("--requestId", dest="request_id", required=True)
    parser.add_argument("--protos", required=True, help="folder holding the compiled functions_rpc_protos package")
    return parser.parse_args()


async def _start(args: argparse.Namespace, protos: ModuleType) -> None:
    sock = socket.create_connection((args.host, args.port), timeout=30)
    sock.settimeout(None)
    connection = Connection(sock, protos)
    try:
        await Dispatcher(asyncio.get_running_loop(), connection, protos, args).dispatch_forever()
    finally:
        connection.close()


def main() -> None:
    args = _parse_args()
    _setup_console_logging()
    sys.path.insert(0, args.protos)
    protos = importlib.import_module("functions_rpc_protos")
    asyncio.run(_start(args, protos))


if __name__ == "__main__":
    main()
