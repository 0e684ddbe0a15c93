"""Strict shapes for every identifier that can reach a URL path or a request body.

Nothing configured or received is put into a Graph or Key Vault URL unless it matches one of these
patterns, so no value can change a request's path. Job ids are also URL-encoded where they are used.
Always ``fullmatch``: with ``match``, ``$`` also matches before a trailing newline.
"""

from __future__ import annotations

import re

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TARGET_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Observed shape ``{templateId}.{32 hex}.{guid}``; treated as opaque but limited to a safe alphabet.
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")
TEMPLATE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Key Vault: 1-127 characters, letters, digits and dashes.
KEY_VAULT_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
#: Key Vault: 3-24 characters, starts with a letter, ends with a letter or digit, no "--".
KEY_VAULT_NAME = re.compile(r"^(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
KEY_VAULT_VERSION = re.compile(r"^[0-9A-Fa-f]{32}$")

#: The ``synchronizationSecret`` enum, exact (case-sensitive) spelling.
SYNCHRONIZATION_SECRET_KEYS: frozenset[str] = frozenset(
    {
        "None",
        "UserName",
        "Password",
        "SecretToken",
        "AppKey",
        "BaseAddress",
        "ClientIdentifier",
        "ClientSecret",
        "SingleSignOnType",
        "Sandbox",
        "Url",
        "Domain",
        "ConsumerKey",
        "ConsumerSecret",
        "TokenKey",
        "TokenExpiration",
        "Oauth2AccessToken",
        "Oauth2AccessTokenCreationTime",
        "Oauth2RefreshToken",
        "SyncAll",
        "InstanceName",
        "Oauth2ClientId",
        "Oauth2ClientSecret",
        "CompanyId",
        "UpdateKeyOnSoftDelete",
        "SynchronizationSchedule",
        "SystemOfRecord",
        "SandboxName",
        "EnforceDomain",
        "SyncNotificationSettings",
        "SkipOutOfScopeDeletions",
        "Oauth2AuthorizationCode",
        "Oauth2RedirectUri",
        "ApplicationTemplateIdentifier",
        "Oauth2TokenExchangeUri",
        "Oauth2AuthorizationUri",
        "AuthenticationType",
        "Server",
        "PerformInboundEntitlementGrants",
        "HardDeletesEnabled",
        "SyncAgentCompatibilityKey",
        "SyncAgentADContainer",
        "ValidateDomain",
        "TestReferences",
        "ConnectionString",
    }
)

_CASEFOLDED_KEYS = {key.casefold(): key for key in SYNCHRONIZATION_SECRET_KEYS}


def is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(GUID.fullmatch(value))


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and bool(JOB_ID.fullmatch(value)) and ".." not in value


def is_secret_name(value: object) -> bool:
    return isinstance(value, str) and bool(KEY_VAULT_SECRET_NAME.fullmatch(value))


def is_vault_name(value: object) -> bool:
    return isinstance(value, str) and bool(KEY_VAULT_NAME.fullmatch(value))


def is_target_name(value: object) -> bool:
    return isinstance(value, str) and bool(TARGET_NAME.fullmatch(value))


def suggest_secret_key(key: str) -> str | None:
    """The enum member a wrongly-cased key was probably meant to be (Graph answers 500 for those)."""
    return _CASEFOLDED_KEYS.get(key.casefold())
