"""Microsoft's FunctionRpc ``.proto`` files, compiled with ``grpcio-tools`` at test-session time.

The files in ``proto/`` are Microsoft's, verbatim (Azure/azure-functions-language-worker-protobuf at
2a3fb29, 2023-07-14, MIT license in ``proto/LICENSE``): the messages the Functions host and every language
worker exchange. Nothing generated is committed; :func:`compile_protos` writes a package into a temporary
folder and both sides of the conformance suite import that one package:

- the worker process hands it to ``azure_functions_runtime`` as ``properties["protos"]`` (the library builds
  every response with it), as Microsoft's proxy worker hands over its ``proxy_worker.protos``;
- the host driver builds the requests with it and parses the responses.

Two steps copy what Microsoft's own build does (``workers/tests/test_setup.py``, ``gen_grpc`` and
``make_absolute_imports`` in Azure/azure-functions-python-worker): protoc runs on the three files, and the
generated imports ``from shared import NullableTypes_pb2`` / ``from identity import ...`` are rewritten to
absolute imports inside the package. Here that rewrite is not cosmetic: the function app has its own
top-level ``shared`` package, which the generated ``from shared import ...`` would otherwise hit.

The package's ``__init__`` re-exports exactly the names of the proxy worker's ``proxy_worker/protos/__init__.py``
(the surface the library gets in Azure), minus the gRPC service stubs: our host and worker talk over a
loopback socket, not gRPC (see ``worker_process.py``).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PACKAGE = "functions_rpc_protos"
SOURCES = ("shared/NullableTypes.proto", "identity/ClaimsIdentityRpc.proto", "FunctionRpc.proto")

#: ``proxy_worker/protos/__init__.py`` (Azure/azure-functions-python-worker, workers/), without the gRPC stubs.
EXPORTED_MESSAGES = (
    "StreamingMessage",
    "StartStream",
    "WorkerInitRequest",
    "WorkerInitResponse",
    "RpcFunctionMetadata",
    "FunctionLoadRequest",
    "FunctionLoadResponse",
    "FunctionEnvironmentReloadRequest",
    "FunctionEnvironmentReloadResponse",
    "InvocationRequest",
    "InvocationResponse",
    "WorkerHeartbeat",
    "WorkerStatusRequest",
    "WorkerStatusResponse",
    "BindingInfo",
    "StatusResult",
    "RpcException",
    "ParameterBinding",
    "TypedData",
    "RpcHttp",
    "RpcHttpCookie",
    "RpcLog",
    "RpcSharedMemory",
    "RpcDataType",
    "RpcTraceContext",
    "CloseSharedMemoryResourcesRequest",
    "CloseSharedMemoryResourcesResponse",
    "FunctionsMetadataRequest",
    "FunctionMetadataResponse",
    "WorkerMetadata",
    "RpcRetryOptions",
)
EXPORTED_NULLABLES = ("NullableString", "NullableBool", "NullableDouble", "NullableTimestamp")

_RELATIVE_IMPORT = re.compile(r"^from (shared|identity) import (\w+_pb2)", re.MULTILINE)


def compile_protos(out_dir: Path) -> Path:
    """Compile the ``.proto`` files into ``out_dir/functions_rpc_protos``; returns ``out_dir`` (for ``sys.path``)."""
    package = out_dir / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(PROTO_DIR), f"--python_out={package}", *SOURCES],
        check=True,
        capture_output=True,
        text=True,
    )
    for generated in package.rglob("*_pb2.py"):
        text = generated.read_text(encoding="utf-8")
        generated.write_text(_RELATIVE_IMPORT.sub(rf"from {PACKAGE}.\1 import \2", text), encoding="utf-8")
    for sub in ("shared", "identity"):
        (package / sub / "__init__.py").write_text("", encoding="utf-8")
    (package / "__init__.py").write_text(
        '"""Generated at test time from Microsoft\'s FunctionRpc.proto (see tests/conformance/rpc.py)."""\n'
        f"from .FunctionRpc_pb2 import {', '.join(EXPORTED_MESSAGES)}  # noqa: F401\n"
        f"from .shared.NullableTypes_pb2 import {', '.join(EXPORTED_NULLABLES)}  # noqa: F401\n",
        encoding="utf-8",
    )
    return out_dir


def load_protos(out_dir: Path) -> ModuleType:
    """Import the compiled package (once per process: protobuf registers each message name globally)."""
    if str(out_dir) not in sys.path:
        sys.path.insert(0, str(out_dir))
    return importlib.import_module(PACKAGE)
