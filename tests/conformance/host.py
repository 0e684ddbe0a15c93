"""The Functions host's side of FunctionRpc, played by the conformance suite.

:class:`FunctionsHost` starts the worker process (``worker_process.py``), waits for its ``StartStream`` and then
sends what the host sends, in the host's order: ``WorkerInitRequest`` (indexing happens here),
``FunctionsMetadataRequest``, one ``FunctionLoadRequest`` per function the worker indexed, then
``InvocationRequest``s. Every message the worker sends back is kept: the response and every ``RpcLog`` it
emitted on the way, so that tests can assert on both and the canary check can search all of it.

How the requests are built follows the host's own conversions (Azure/azure-functions-host, ``src/WebJobs.Script.Grpc``):

- ``ToRpcInvocationRequest`` (``ScriptInvocationContextExtensions``): ``input_data`` holds the trigger value;
  ``trigger_metadata`` holds the trigger's binding data except null values, the ``sys`` binding data, and the
  HTTP request itself when the worker advertises ``RpcHttpTriggerMetadataRemoved``; a W3C trace context;
- HTTP (``GrpcMessageConversionExtensions.ToRpcHttp``): method, ``scheme://host/path?query`` url, header names
  lower-cased, query values that are not empty, and — because the library advertises ``RpcHttpBodyOnly`` and
  ``RawHttpBodyBytes`` — the body as ``TypedData(bytes=...)`` only, and only when it is not empty. The HTTP
  extension's ``Query`` and ``Headers`` binding data travel as JSON trigger metadata (the extension's binding
  data derived from a JSON body's properties is not mirrored; the library ignores trigger metadata for HTTP);
- Event Grid (``Microsoft.Azure.WebJobs.Extensions.EventGrid``: ``EventGridExtensionConfigProvider``,
  ``EventGridTriggerAttributeBindingProvider``): the webhook's body is split into events and each event's JSON
  object — an Event Grid event, or for a CloudEvents subscription the CloudEvent exactly as delivered — is the
  trigger value, sent as ``TypedData(json=...)``; the binding data is ``{"data": <the event's data>}``. The
  extension answers Event Grid 500 when an invocation failed (Event Grid delivers again) and 202 otherwise;
- timer: the ``TimerInfo`` JSON ``{"Schedule": {"AdjustForDST": true}, "ScheduleStatus": {...}, "IsPastDue": ...}``;
  no trigger metadata (not checked against the Timer extension's source).

The host's own ``WorkerInitRequest.capabilities`` are sent empty: the library reads only ``FunctionDataCache``
from them, which this suite leaves off.
"""

from __future__ import annotations

import json
import secrets
import socket
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from google.protobuf import text_format

WORKER_SCRIPT = Path(__file__).resolve().parent / "worker_process.py"
HOST_VERSION = "4.1041.200"
#: The longest one request may take before the suite gives up on the worker (the app's own deadline is 120 s).
REQUEST_TIMEOUT_SECONDS = 150.0


class WorkerFailed(RuntimeError):
    """The worker process died or stopped answering; carries the tail of its stderr."""


@dataclass
class Exchange:
    """One request, the worker's response, and every ``RpcLog`` the worker sent while answering it."""

    request: Any
    response: Any
    logs: list[Any]

    def transcript(self) -> Iterator[str]:
        yield text_format.MessageToString(self.response, as_utf8=True)
        for log in self.logs:
            yield f"{log.category} {log.level} {log.message} {log.exception.message} {log.exception.stack_trace}"


@dataclass
class InvocationResult:
    """What the host learns from an ``InvocationResponse``."""

    invocation_id: str
    exchange: Exchange
    protos: ModuleType

    @property
    def response(self) -> Any:
        return self.exchange.response.invocation_response

    @property
    def succeeded(self) -> bool:
        return self.response.result.status == self.protos.StatusResult.Success

    @property
    def failed(self) -> bool:
        return self.response.result.status == self.protos.StatusResult.Failure

    @property
    def exception_message(self) -> str:
        return self.response.result.exception.message

    @property
    def logs(self) -> list[Any]:
        return self.exchange.logs

    def logs_at(self, level_name: str) -> list[Any]:
        level = self.protos.RpcLog.Level.Value(level_name)
        return [log for log in self.logs if log.level == level]

    def structured(self, name: str | None = None) -> list[dict[str, Any]]:
        """The app's structured records (README "Logs": ``<EventName> <JSON>`` messages), optionally only ``name``."""
        found = []
        for log in self.logs:
            _, _, payload = log.message.partition(" ")
            try:
                record = json.loads(payload)
            except ValueError:
                continue
            if isinstance(record, dict) and (name is None or record.get("event") == name):
                found.append({**record, "_level": self.protos.RpcLog.Level.Name(log.level)})
        return found


@dataclass
class HttpResult(InvocationResult):
    """An HTTP invocation, read back from ``return_value`` (``TypedData.http``) as the host reads it."""

    @property
    def http(self) -> Any:
        return self.response.return_value.http

    @property
    def status(self) -> int:
        return int(self.http.status_code)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.http.headers)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.http.headers.items() if k.lower() == name.lower()), None)

    @property
    def body_bytes(self) -> bytes:
        body = self.http.body
        kind = body.WhichOneof("data")
        if kind == "bytes":
            return body.bytes
        if kind in ("string", "json"):
            return getattr(body, kind).encode()
        return b""

    @property
    def body(self) -> Any:
        return json.loads(self.body_bytes) if self.body_bytes else None

    def result(self, target: str) -> dict[str, Any]:
        return next(r for r in self.body["results"] if r["target"] == target)


@dataclass
class FunctionsHost:
    """Starts one worker process and speaks FunctionRpc with it over a loopback socket."""

    protos: ModuleType
    protos_dir: Path
    app_dir: Path
    environ: Mapping[str, str]
    workdir: Path
    python: str = sys.executable
    exchanges: list[Exchange] = field(default_factory=list)
    worker_capabilities: dict[str, str] = field(default_factory=dict)
    functions: dict[str, Any] = field(default_factory=dict)  # name -> RpcFunctionMetadata
    _process: subprocess.Popen[bytes] | None = None
    _sock: socket.socket | None = None
    _request_id: str = ""

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Any:
        """Launch the worker (the host's command line for it) and wait for ``StartStream``; returns it."""
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(60)
        port = listener.getsockname()[1]
        self._request_id = str(uuid.uuid4())
        self.workdir.mkdir(parents=True, exist_ok=True)
        arguments = {  # the host's command line for a language worker
            "--host": "127.0.0.1",
            "--port": str(port),
            "--workerId": str(uuid.uuid4()),
            "--requestId": self._request_id,
            "--protos": str(self.protos_dir),
        }
        command = [self.python, str(WORKER_SCRIPT), *(part for pair in arguments.items() for part in pair)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self._process = subprocess.Popen(
                command,
                cwd=self.app_dir,
                env=dict(self.environ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        try:
            self._sock, _ = listener.accept()
        except OSError as error:
            raise WorkerFailed(f"the worker did not connect: {error}\n{self._stderr_tail()}") from error
        finally:
            listener.close()
        self._sock.settimeout(REQUEST_TIMEOUT_SECONDS)
        message, _logs = self._receive_until("start_stream")
        return message.start_stream

    def stop(self) -> int | None:
        """Close the stream (the worker then stops its threadpool and exits); returns the exit code."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait(timeout=10)

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "worker.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "worker.stderr"

    def console(self) -> str:
        """Everything the worker process printed so far (stdout, then stderr)."""
        return "\n".join(p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists())

    # --- the host's requests -----------------------------------------------------------------------------

    def init(self) -> Exchange:
        """``WorkerInitRequest``: the library indexes ``function_app.py`` here."""
        exchange = self.send(
            worker_init_request=self.protos.WorkerInitRequest(
                host_version=HOST_VERSION,
                capabilities={},
                worker_directory=str(WORKER_SCRIPT.parent),
                function_app_directory=str(self.app_dir),
            )
        )
        self.worker_capabilities = dict(exchange.response.worker_init_response.capabilities)
        return exchange

    def metadata(self) -> Exchange:
        """``FunctionsMetadataRequest``; remembers the indexed functions by name."""
        exchange = self.send(
            functions_metadata_request=self.protos.FunctionsMetadataRequest(function_app_directory=str(self.app_dir))
        )
        results = exchange.response.function_metadata_response.function_metadata_results
        self.functions = {m.name: m for m in results}
        return exchange

    def load_all(self) -> list[Exchange]:
        """One ``FunctionLoadRequest`` per indexed function, with the metadata the worker returned."""
        return [
            self.send(function_load_request=self.protos.FunctionLoadRequest(function_id=m.function_id, metadata=m))
            for m in self.functions.values()
        ]

    def boot(self) -> None:
        """Start, init, metadata, load: what the host does before the first invocation."""
        self.start()
        self.init()
        self.metadata()
        self.load_all()

    def invoke(
        self,
        function: str,
        trigger_value: Any,
        trigger_metadata: Mapping[str, Any] | None = None,
        result_type: type[InvocationResult] = InvocationResult,
    ) -> InvocationResult:
        """An ``InvocationRequest`` for ``function`` with its trigger binding's value (a ``TypedData``)."""
        metadata = self.functions[function]
        invocation_id = str(uuid.uuid4())
        request = self.protos.InvocationRequest(
            invocation_id=invocation_id,
            function_id=metadata.function_id,
            input_data=[self.protos.ParameterBinding(name=self.trigger_binding(function)["name"], data=trigger_value)],
            trigger_metadata=dict(trigger_metadata or {}),
            trace_context=self.protos.RpcTraceContext(
                trace_parent=f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
                trace_state="",
                attributes={"OperationName": function},
            ),
        )
        exchange = self.send(invocation_request=request)
        return result_type(invocation_id=invocation_id, exchange=exchange, protos=self.protos)

    def http(
        self,
        method: str = "POST",
        body: bytes = b"",
        *,
        function: str = "sync",
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        host: str = "sync-app.azurewebsites.net",
    ) -> HttpResult:
        """An HTTP request as ``ToRpcHttp`` converts it for a worker with the library's capabilities."""
        if not (self.worker_capabilities.get("RpcHttpBodyOnly") and self.worker_capabilities.get("RawHttpBodyBytes")):
            raise NotImplementedError("the host's conversion without RpcHttpBodyOnly/RawHttpBodyBytes is not mirrored")
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        if body:
            lowered.setdefault("content-length", str(len(body)))
        params = {k: v for k, v in (query or {}).items() if v}
        route = self.trigger_binding(function).get("route") or function
        url = f"https://{host}/api/{route}" + (f"?{urlencode(dict(query or {}))}" if query else "")
        rpc_http = self.protos.RpcHttp(method=method, url=url, headers=lowered, query=params)
        if body:
            rpc_http.body.CopyFrom(self.protos.TypedData(bytes=body))
        metadata = {"Query": self._json(params), "Headers": self._json(lowered)}
        if not self.worker_capabilities.get("RpcHttpTriggerMetadataRemoved"):
            raise NotImplementedError("the host would also send the request itself as trigger metadata")
        result = self.invoke(function, self.protos.TypedData(http=rpc_http), metadata, HttpResult)
        assert isinstance(result, HttpResult)
        return result

    def event_grid(self, event: Mapping[str, Any], *, function: str = "keyvault_events") -> InvocationResult:
        """One event of a delivery (Event Grid schema or a CloudEvent), as the Event Grid extension hands it over."""
        metadata = {} if event.get("data") is None else {"data": self._json(event["data"])}
        return self.invoke(function, self._json(event), metadata)

    def timer(
        self,
        *,
        function: str = "reconcile",
        past_due: bool = False,
        last: datetime | None = None,
        next_run: datetime | None = None,
    ) -> InvocationResult:
        """A timer tick: the ``TimerInfo`` JSON the host serializes for out-of-process workers."""
        now = datetime.now(timezone.utc)
        status = {
            "Last": (last or now).isoformat(),
            "Next": (next_run or now).isoformat(),
            "LastUpdated": now.isoformat(),
        }
        info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
        return self.invoke(function, self._json(info))

    # --- helpers --------------------------------------------------------------------------------------

    def raw_bindings(self, function: str) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.functions[function].raw_bindings]

    def trigger_binding(self, function: str) -> dict[str, Any]:
        return next(b for b in self.raw_bindings(function) if b["type"].endswith("Trigger"))

    def _json(self, value: Any) -> Any:
        return self.protos.TypedData(json=json.dumps(value, separators=(",", ":")))

    def transcript(self) -> Iterator[str]:
        for exchange in self.exchanges:
            yield from exchange.transcript()

    # --- the stream -------------------------------------------------------------------------------------

    def send(self, **content: Any) -> Exchange:
        """Send one ``StreamingMessage`` and wait for the worker's answer to it (logs before it are kept)."""
        assert self._sock is not None, "start() first"
        request = self.protos.StreamingMessage(request_id=str(uuid.uuid4()), **content)
        (kind,) = content
        expected = {
            "worker_init_request": "worker_init_response",
            "functions_metadata_request": "function_metadata_response",
            "function_load_request": "function_load_response",
            "invocation_request": "invocation_response",
        }[kind]
        data = request.SerializeToString()
        self._sock.sendall(struct.pack(">I", len(data)) + data)
        response, logs = self._receive_until(expected)
        exchange = Exchange(request=request, response=response, logs=logs)
        self.exchanges.append(exchange)
        return exchange

    def _receive_until(self, kind: str) -> tuple[Any, list[Any]]:
        logs = []
        while True:
            message = self._read_message()
            received = message.WhichOneof("content")
            if received == "rpc_log":
                logs.append(message.rpc_log)
                continue
            if received != kind:
                raise WorkerFailed(f"expected {kind}, the worker sent {received}")
            return message, logs

    def _read_message(self) -> Any:
        header = self._read_exactly(4)
        message = self.protos.StreamingMessage()
        message.ParseFromString(self._read_exactly(struct.unpack(">I", header)[0]))
        return message

    def _read_exactly(self, size: int) -> bytes:
        assert self._sock is not None
        chunks, remaining = [], size
        while remaining:
            try:
                chunk = self._sock.recv(min(remaining, 1 << 20))
            except TimeoutError as error:
                raise WorkerFailed(f"the worker did not answer in time\n{self._stderr_tail()}") from error
            if not chunk:
                code = self._process.poll() if self._process else None
                raise WorkerFailed(f"the worker closed the stream (exit code {code})\n{self._stderr_tail()}")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def worker_environ(base: Mapping[str, str], app_dir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment: the machine's (PATH, HOME, ...) without any app setting of this app or of Azure
    from the developer's shell, plus what the host sets for a Python worker and the given app settings."""
    dropped_prefixes = ("SYNC_", "IDENTITY_", "MSI_", "AZURE_", "AzureWebJobs", "FUNCTIONS_", "PYTHON_ENABLE_",
                        "APPLICATIONINSIGHTS_", "WEBSITE_", "REQUESTS_CA_BUNDLE", "PYTEST_")  # fmt: skip
    environ = {k: v for k, v in base.items() if not k.startswith(dropped_prefixes)}
    environ.update(
        {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsScriptRoot": str(app_dir),
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    environ.update(settings)
    environ.pop("PYTHONPATH", None)
    return environ


__all__ = ["Exchange", "FunctionsHost", "HttpResult", "InvocationResult", "WorkerFailed", "worker_environ"]
