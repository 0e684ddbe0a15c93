"""Loopback stand-ins for the services Provisioning Secret Sync calls: managed identity, Key Vault and Graph.

They speak real HTTP(S) on 127.0.0.1 so the product's real SDKs and HTTP clients are exercised end to end in tests
and in a local sandbox, with state, request logs and fault injection under the test's control.
"""

from .graph import SENSITIVE_KEYS, GraphStandin
from .identity import ManagedIdentityStandin
from .keyvault import KeyVaultStandin
from .server import Fault, RequestRecord
from .stack import StandinStack
from .tls import TestCertificates

__all__ = [
    "SENSITIVE_KEYS",
    "Fault",
    "GraphStandin",
    "KeyVaultStandin",
    "ManagedIdentityStandin",
    "RequestRecord",
    "StandinStack",
    "TestCertificates",
]
