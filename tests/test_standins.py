"""Self-tests of the loopback stand-ins, driven by the real SDKs and HTTP clients the app uses.

If these pass, the stand-ins speak the protocols well enough for azure-identity (managed identity, App Service
flavour), azure-keyvault-secrets (challenge authentication) and requests (TLS with a private CA, keep-alive), and
their fault injection produces the client-side symptoms the app's retry logic must handle.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from standins import (
    SENSITIVE_KEYS,
    Fault,
    GraphStandin,
    KeyVaultStandin,
    ManagedIdentityStandin,
    RequestRecord,
    StandinStack,
    TestCertificates,
)
from standins.tokens import decode_token, make_token

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SP = "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"
OTHER_SP = "0b6a3d3e-1111-4c0e-9f3b-2a1d8c2f9e99"
GRAPH = "https://graph.microsoft.com"
VAULT = "https://vault.azure.net"
PLANTED = "planted-Secret-Value-7f3e9a"  # must never show up in any repr/log/error text


@pytest.fixture(scope="module")
def stack() -> Iterator[StandinStack]:
    with StandinStack() as started:
        yield started


@pytest.fixture(autouse=True)
def _fresh(stack: StandinStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from clean stand-in state with the app's environment pointing at the stack."""
    stack.reset()
    stack.identity.known_client_ids.add(CLIENT_ID)
    for name, value in stack.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)


@pytest.fixture
def vault(stack: StandinStack) -> Iterator[KeyVaultStandin]:
    """A vault on a fresh port: the Key Vault SDK caches challenges per host for the whole process."""
    with KeyVaultStandin(ssl_context=stack.certificates.server_context(), tenant_id=stack.identity.tenant_id) as fresh:
        yield fresh


@pytest.fixture
def credential() -> Iterator[ManagedIdentityCredential]:
    with ManagedIdentityCredential(client_id=CLIENT_ID, retry_total=0) as cred:
        yield cred


@pytest.fixture
def client(vault: KeyVaultStandin, credential: ManagedIdentityCredential) -> Iterator[SecretClient]:
    """The real SDK client, as the app builds it for a loopback vault (no retries, to keep fault tests fast)."""
    with SecretClient(
        vault_url=vault.url, credential=credential, verify_challenge_resource=False, retry_total=0
    ) as secret_client:
        yield secret_client


def _graph_headers(stack: StandinStack, **claims_override: object) -> dict[str, str]:
    token = stack.identity.issue_token(GRAPH, CLIENT_ID)
    if claims_override:
        claims = decode_token(token)
        assert claims is not None
        claims.update(claims_override)
        token = make_token(claims)
    return {"Authorization": f"Bearer {token}", "client-request-id": "0f0e0d0c-aaaa-bbbb-cccc-000000000001"}


def _sync_url(stack: StandinStack, sp: str = SP, tail: str = "", version: str = "v1.0") -> str:
    return f"{stack.graph.url}/{version}/servicePrincipals/{sp}/synchronization{tail}"


def _ca(stack: StandinStack) -> str:
    return stack.certificates.ca_bundle_path


# --------------------------------------------------------------------------- managed identity


def test_managed_identity_credential_gets_token(stack: StandinStack, credential: ManagedIdentityCredential) -> None:
    token = credential.get_token(f"{VAULT}/.default")
    claims = decode_token(token.token)
    assert claims is not None
    assert claims["aud"] == VAULT
    assert claims["appid"] == CLIENT_ID
    assert claims["oid"] == stack.identity.principal_id
    assert claims["tid"] == stack.identity.tenant_id
    assert claims["roles"] == ["Synchronization.ReadWrite.All"]
    assert 3500 < token.expires_on - time.time() <= 3600
    credential.get_token(f"{VAULT}/.default")  # cached by the credential
    assert stack.identity.token_requests() == 1
    assert stack.identity.token_requests(VAULT) == 1
    assert stack.identity.token_requests(GRAPH) == 0
    record = stack.identity.requests[-1]
    assert (record.hop, record.status, record.query["client_id"]) == ("token", 200, CLIENT_ID)


def test_managed_identity_errors(stack: StandinStack) -> None:
    mi = stack.identity
    good = {"X-IDENTITY-HEADER": mi.identity_header}
    params = {"api-version": "2019-08-01", "resource": GRAPH}
    assert requests.get(mi.endpoint, params=params, timeout=5).status_code == 401
    assert requests.get(mi.endpoint, params=params, headers={"X-IDENTITY-HEADER": "nope"}, timeout=5).status_code == 401
    assert requests.get(mi.endpoint, params={"api-version": "2019-08-01"}, headers=good, timeout=5).status_code == 400
    bad_version = {**params, "api-version": "2017-09-01"}
    assert requests.get(mi.endpoint, params=bad_version, headers=good, timeout=5).status_code == 400
    unknown = requests.get(mi.endpoint, params={**params, "client_id": "nobody"}, headers=good, timeout=5)
    assert unknown.status_code == 400
    assert unknown.json()["message"].startswith("No User Assigned or Delegated Managed Identity found")
    assert unknown.json()["statusCode"] == 400
    system = requests.get(mi.endpoint, params=params, headers=good, timeout=5)
    body = system.json()
    assert system.status_code == 200 and body["token_type"] == "Bearer" and body["resource"] == GRAPH
    assert body["client_id"] == mi.system_client_id
    assert int(body["expires_on"]) - time.time() > 3500
    assert decode_token(body["access_token"])["appid"] == mi.system_client_id  # type: ignore[index]
    assert mi.token_requests() == 1  # only the successful one counts


def test_managed_identity_credential_unknown_client_id_fails(stack: StandinStack) -> None:
    with (
        ManagedIdentityCredential(client_id="not-configured", retry_total=0) as cred,
        pytest.raises(ClientAuthenticationError),
    ):
        cred.get_token(f"{GRAPH}/.default")
    assert stack.identity.token_requests() == 0


# --------------------------------------------------------------------------- key vault through the real SDK


def test_keyvault_challenge_then_cached(stack: StandinStack, vault: KeyVaultStandin, client: SecretClient) -> None:
    first = vault.set_secret("Scim-Token", "value-one")
    second = vault.set_secret("Scim-Token", "value-two")

    latest = client.get_secret("scim-token")
    assert latest.value == "value-two"
    assert latest.properties.version == second == vault.current_version("SCIM-TOKEN")
    assert latest.id == f"{vault.url}/secrets/Scim-Token/{second}"
    assert [(r.status, r.authorized) for r in vault.requests] == [(401, False), (200, True)]
    assert vault.challenges_issued == 1

    older = client.get_secret("scim-token", first)
    assert older.value == "value-one"
    assert [(r.status, r.authorized) for r in vault.requests] == [(401, False), (200, True), (200, True)]
    assert vault.challenges_issued == 1
    assert stack.identity.token_requests(VAULT) == 1
    assert vault.hop_count("secret") == 3
    assert vault.connections_opened == 1  # azure-core keeps the TLS connection alive
    assert vault.requests[0].path == "/secrets/scim-token/"


def test_keyvault_not_found_disabled_and_forbidden(vault: KeyVaultStandin, client: SecretClient) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("nope")
    assert missing.value.error is not None and missing.value.error.code == "SecretNotFound"

    version = vault.set_secret("tok", "v")
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("tok", "0" * 32)

    vault.update_version("tok", version, enabled=False)
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("tok")
    assert disabled.value.status_code == 403
    assert "disabled" in str(disabled.value.message)

    vault.set_secret("other", "v")
    vault.forbidden_secrets.add("other")
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("OTHER")
    assert denied.value.status_code == 403
    assert "getSecret/action" in str(denied.value.message)


@pytest.mark.parametrize(
    ("setting", "inner", "phrase"),
    [
        ({"forbid_all": True}, "ForbiddenByRbac", "DeniedWithNoValidRBAC"),
        (
            {"forbid_all": True, "permission_model": "accessPolicy"},
            "AccessDenied",
            "does not have secrets get permission",
        ),
        ({"network_denial": "privateLinkOnly"}, "ForbiddenByConnection", "Public network access is disabled"),
        ({"network_denial": "firewall"}, "ForbiddenByFirewall", "Client address is not authorized"),
    ],
)
def test_keyvault_403s_differ_by_cause(
    vault: KeyVaultStandin, client: SecretClient, setting: dict[str, object], inner: str, phrase: str
) -> None:
    vault.set_secret("tok", "v")
    for name, value in setting.items():
        setattr(vault, name, value)
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("tok")
    assert denied.value.status_code == 403
    assert denied.value.error is not None and denied.value.error.code == "Forbidden"
    assert denied.value.error.innererror == {"code": inner}
    assert phrase in str(denied.value.error.message)
    vault.reset()
    vault.set_secret("tok", "v")
    assert client.get_secret("tok").value == "v"


def test_keyvault_dates_are_reported_not_enforced(vault: KeyVaultStandin, client: SecretClient) -> None:
    past = datetime.now(timezone.utc) - timedelta(days=1)
    future = datetime.now(timezone.utc) + timedelta(days=1)
    vault.set_secret("expired", "v", expires=past, content_type="text/plain", tags={"owner": "ops"})
    vault.set_secret("early", "v", not_before=future)
    expired = client.get_secret("expired")
    assert expired.properties.expires_on is not None and expired.properties.expires_on < datetime.now(timezone.utc)
    assert expired.properties.content_type == "text/plain"
    assert expired.properties.tags == {"owner": "ops"}
    early = client.get_secret("early")
    assert early.properties.not_before is not None and early.properties.not_before > datetime.now(timezone.utc)


def test_keyvault_versions_order_and_created_strictly_increasing(stack: StandinStack, vault: KeyVaultStandin) -> None:
    ids = [vault.set_secret("rot", f"v{i}") for i in range(4)]
    assert vault.versions("ROT") == ids
    assert vault.current_version("rot") == ids[-1]
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in ids)
    token = make_token({"aud": VAULT, "exp": time.time() + 60})
    created = []
    for version in ids:
        response = requests.get(
            f"{vault.url}/secrets/rot/{version}",
            params={"api-version": "7.4"},
            headers={"Authorization": f"Bearer {token}"},
            verify=_ca(stack),
            timeout=5,
        )
        assert response.status_code == 200
        assert isinstance(response.json()["attributes"]["created"], int)
        created.append(response.json()["attributes"]["created"])
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert "x-ms-request-id" in response.headers and "x-ms-keyvault-service-version" in response.headers
    assert created == sorted(set(created))


def test_keyvault_token_checks(stack: StandinStack, vault: KeyVaultStandin) -> None:
    url = f"{vault.url}/secrets/x"
    params = {"api-version": "2026-04-01"}
    vault.set_secret("x", "v")

    def get(token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(url, params=params, headers=headers, verify=_ca(stack), timeout=5)

    challenge = get(None)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{stack.identity.tenant_id}", resource="{VAULT}"'
    )
    assert challenge.json() == {
        "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
    }
    wrong_aud = get(stack.identity.issue_token(GRAPH))
    assert wrong_aud.status_code == 401 and "WWW-Authenticate" in wrong_aud.headers
    assert get(stack.identity.issue_token(VAULT, lifetime=-10)).status_code == 401
    assert get(stack.identity.issue_token(VAULT + "/")).status_code == 200
    assert vault.challenges_issued == 3
    assert {r.hop for r in vault.requests} == {"secret"}

    missing_version = requests.get(
        url, headers={"Authorization": f"Bearer {stack.identity.issue_token(VAULT)}"}, verify=_ca(stack), timeout=5
    )
    assert missing_version.status_code == 400

    vault.resource = "https://vault.usgovcloudapi.net"
    assert 'resource="https://vault.usgovcloudapi.net"' in get(None).headers["WWW-Authenticate"]
    assert get(stack.identity.issue_token(VAULT)).status_code == 401


def test_keyvault_national_cloud_through_sdk(stack: StandinStack, vault: KeyVaultStandin, client: SecretClient) -> None:
    vault.resource = "https://vault.usgovcloudapi.net"
    vault.set_secret("gov", "v")
    assert client.get_secret("gov").value == "v"
    assert stack.identity.token_requests("https://vault.usgovcloudapi.net") == 1


def test_keyvault_throttle_fault_through_sdk(vault: KeyVaultStandin, client: SecretClient) -> None:
    vault.set_secret("t", "v")
    client.get_secret("t")
    vault.inject("secret", Fault.status(429, retry_after="3"))
    with pytest.raises(HttpResponseError) as throttled:
        client.get_secret("t")
    assert throttled.value.status_code == 429
    assert throttled.value.response is not None and throttled.value.response.headers["Retry-After"] == "3"
    assert throttled.value.error is not None and throttled.value.error.code == "Throttled"
    assert client.get_secret("t").value == "v"
    assert [r.fault for r in vault.requests] == [None, None, "status:429", None]


# --------------------------------------------------------------------------- graph


@pytest.fixture
def graph_sp(stack: StandinStack) -> str:
    stack.graph.add_service_principal(SP)
    return stack.graph.add_job(SP, status="Quarantine")


def test_graph_authentication_and_permissions(stack: StandinStack, graph_sp: str) -> None:
    jobs = _sync_url(stack, tail="/jobs")
    anonymous = requests.get(jobs, verify=_ca(stack), timeout=5)
    assert anonymous.status_code == 401
    error = anonymous.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["innerError"]["request-id"] == anonymous.headers["request-id"]
    assert anonymous.headers["client-request-id"] == anonymous.headers["request-id"]

    headers = _graph_headers(stack)
    ok = requests.get(jobs, headers=headers, verify=_ca(stack), timeout=5)
    assert ok.status_code == 200
    assert ok.headers["client-request-id"] == headers["client-request-id"]
    assert ok.json()["value"][0]["id"] == graph_sp

    assert requests.get(jobs, headers=_graph_headers(stack, aud=VAULT), verify=_ca(stack), timeout=5).status_code == 401
    expired = _graph_headers(stack, exp=int(time.time()) - 5)
    assert requests.get(jobs, headers=expired, verify=_ca(stack), timeout=5).status_code == 401
    stack.graph.audience = "https://graph.microsoft.us"
    assert requests.get(jobs, headers=headers, verify=_ca(stack), timeout=5).status_code == 401
    gov = _graph_headers(stack, aud="https://graph.microsoft.us/")
    assert requests.get(jobs, headers=gov, verify=_ca(stack), timeout=5).status_code == 200
    stack.graph.audience = GRAPH

    no_roles = requests.get(jobs, headers=_graph_headers(stack, roles=[]), verify=_ca(stack), timeout=5)
    assert no_roles.status_code == 403
    assert no_roles.json()["error"]["code"] == "Authorization_RequestDenied"
    assert no_roles.json()["error"]["message"] == "Insufficient privileges to complete the operation."

    owned_by = _graph_headers(stack, roles=["Application.ReadWrite.OwnedBy"])
    assert requests.get(jobs, headers=owned_by, verify=_ca(stack), timeout=5).status_code == 403
    stack.graph.add_service_principal(OTHER_SP, owners=[stack.identity.principal_id])
    stack.graph.add_job(OTHER_SP)
    assert requests.get(_sync_url(stack, OTHER_SP, "/jobs"), headers=owned_by, verify=_ca(stack), timeout=5).ok


def test_graph_not_found_and_method(stack: StandinStack, graph_sp: str) -> None:
    headers = _graph_headers(stack)
    missing_sp = "00000000-0000-0000-0000-0000000000aa"
    response = requests.get(_sync_url(stack, missing_sp, "/jobs"), headers=headers, verify=_ca(stack), timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"
    assert missing_sp in response.json()["error"]["message"]
    response = requests.get(_sync_url(stack, tail="/jobs/scim.nope"), headers=headers, verify=_ca(stack), timeout=5)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "NotFound")
    response = requests.delete(_sync_url(stack, tail="/secrets"), headers=headers, verify=_ca(stack), timeout=5)
    assert response.status_code == 405
    response = requests.get(_sync_url(stack, tail="/templates/x/y/z"), headers=headers, verify=_ca(stack), timeout=5)
    assert response.status_code == 404
    job_url = _sync_url(stack, tail=f"/jobs/{quote(graph_sp, safe='')}")
    job = requests.get(job_url, headers=headers, verify=_ca(stack), timeout=5).json()
    assert job["status"]["code"] == "Quarantine"
    assert job["status"]["quarantine"]["reason"] == "EncounteredQuarantineException"
    assert job["templateId"] == "scim" and job["schedule"]["interval"] == "PT40M"
    beta = requests.get(_sync_url(stack, tail="/jobs", version="beta"), headers=headers, verify=_ca(stack), timeout=5)
    assert beta.status_code == 200


def test_graph_validate_credentials(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail=f"/jobs/{quote(graph_sp, safe='')}/validateCredentials")
    headers = _graph_headers(stack)
    stack.graph.accept_credentials(SP, {"BaseAddress": "https://scim.example/v2", "SecretToken": "right"})
    good = [{"key": "BaseAddress", "value": "https://scim.example/v2"}, {"key": "SecretToken", "value": "right"}]
    body = {"credentials": good, "useSavedCredentials": False, "templateId": "scim"}
    assert requests.post(url, json=body, headers=headers, verify=_ca(stack), timeout=5).status_code == 204

    bad = {"credentials": [good[0], {"key": "SecretToken", "value": PLANTED}], "useSavedCredentials": False}
    rejected = requests.post(url, json=bad, headers=headers, verify=_ca(stack), timeout=5)
    assert rejected.status_code == 400
    assert PLANTED not in rejected.text
    nested = json.loads(rejected.json()["error"]["message"])
    # wrong credentials: the target application answered 401, the provisioning service's "Failure" class
    assert nested["code"] == "SystemForCrossDomainIdentityManagementCredentialValidationFailure"
    assert "Unauthorized" in nested["message"]

    saved = {"credentials": [], "useSavedCredentials": True}
    assert requests.post(url, json=saved, headers=headers, verify=_ca(stack), timeout=5).status_code == 400
    stack.graph.set_stored_secrets(SP, {"BaseAddress": "https://scim.example/v2", "SecretToken": "right"})
    assert requests.post(url, json=saved, headers=headers, verify=_ca(stack), timeout=5).status_code == 204
    assert stack.graph.validations(SP) == [True, False, False, True]
    assert stack.graph.validation_attempts(SP) == 4
    assert stack.graph.hop_count("validate") == 4

    bad_json = requests.post(
        url, data=b"{not json", headers={**headers, "Content-Type": "application/json"}, verify=_ca(stack), timeout=5
    )
    assert bad_json.status_code == 400
    assert stack.graph.validation_attempts(SP) == 4


@pytest.mark.parametrize("placement", ["nested", "code", "innerError", "text"])
def test_graph_validate_credentials_when_the_target_cannot_be_reached(
    stack: StandinStack, graph_sp: str, placement: str
) -> None:
    url = _sync_url(stack, tail=f"/jobs/{quote(graph_sp, safe='')}/validateCredentials")
    stack.graph.accept_credentials(SP, {"SecretToken": "right"})
    stack.graph.set_target_unreachable(SP)
    stack.graph.validation_code_placement = placement
    body = {"credentials": [{"key": "SecretToken", "value": "right"}], "useSavedCredentials": False}
    answer = requests.post(url, json=body, headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    assert answer.status_code == 400
    error = answer.json()["error"]
    where = {
        "nested": lambda: json.loads(error["message"])["code"],
        "code": lambda: error["code"],
        "innerError": lambda: error["innerError"]["code"],
        "text": lambda: error["message"].split(":")[0],
    }
    assert where[placement]() == "SystemForCrossDomainIdentityManagementCredentialValidationUnavailable"
    stack.graph.set_target_unreachable(SP, False)
    assert requests.post(url, json=body, headers=_graph_headers(stack), verify=_ca(stack), timeout=5).status_code == 204


def test_graph_put_merges_by_default_and_an_empty_value_deletes_its_key(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/secrets")
    headers = _graph_headers(stack)
    assert stack.graph.put_mode == "merge"
    stack.graph.set_stored_secrets(SP, {"BaseAddress": "https://old", "SecretToken": "old", "SyncAll": "false"})
    put = {"value": [{"key": "SecretToken", "value": PLANTED}, {"key": "SyncAll", "value": ""}]}
    assert requests.put(url, json=put, headers=headers, verify=_ca(stack), timeout=5).status_code == 204
    assert stack.graph.stored_secrets(SP) == {"BaseAddress": "https://old", "SecretToken": PLANTED}
    assert stack.graph.secret_history(SP) == [{"BaseAddress": "https://old", "SecretToken": PLANTED}]


def test_graph_get_secrets_can_answer_404_while_nothing_is_stored(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/secrets")
    headers = _graph_headers(stack)
    assert requests.get(url, headers=headers, verify=_ca(stack), timeout=5).json()["value"] == []
    stack.graph.not_found_when_empty = True
    missing = requests.get(url, headers=headers, verify=_ca(stack), timeout=5)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NotFound")
    stack.graph.set_stored_secrets(SP, {"BaseAddress": "https://x"})
    assert requests.get(url, headers=headers, verify=_ca(stack), timeout=5).status_code == 200


def test_faults_can_answer_with_raw_bodies(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/jobs")
    stack.graph.inject("list_jobs", Fault.gateway_page(502))
    stack.graph.inject("list_jobs", Fault.status(500, raw_body=b""))
    stack.graph.inject("list_jobs", Fault.status(400, raw_body=b"not json", content_type="text/plain"))
    page = requests.get(url, headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    assert page.status_code == 502 and page.headers["Content-Type"] == "text/html"
    assert page.text.startswith("<html>") and "502 Bad Gateway" in page.text
    empty = requests.get(url, headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    assert (empty.status_code, empty.content, empty.headers.get("Content-Type")) == (500, b"", None)
    text = requests.get(url, headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    assert (text.status_code, text.text, text.headers["Content-Type"]) == (400, "not json", "text/plain")
    with pytest.raises(ValueError):
        Fault.status(500, body={"a": 1}, raw_body=b"x")


def test_graph_put_replaces_in_replace_mode_and_get_masks(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/secrets")
    headers = _graph_headers(stack)
    stack.graph.put_mode = "replace"
    stack.graph.set_stored_secrets(SP, {"BaseAddress": "https://old", "SecretToken": "old", "SyncAll": "false"})
    put = {"value": [{"key": "BaseAddress", "value": "https://new"}, {"key": "SecretToken", "value": PLANTED}]}
    assert requests.put(url, json=put, headers=headers, verify=_ca(stack), timeout=5).status_code == 204
    assert stack.graph.stored_secrets(SP) == {"BaseAddress": "https://new", "SecretToken": PLANTED}
    assert stack.graph.secret_history(SP) == [{"BaseAddress": "https://new", "SecretToken": PLANTED}]

    shown = requests.get(url, headers=headers, verify=_ca(stack), timeout=5)
    assert shown.status_code == 200
    assert shown.json()["value"] == [
        {"key": "BaseAddress", "value": "https://new"},
        {"key": "SecretToken", "value": "*"},
    ]
    assert PLANTED not in shown.text
    assert "SecretToken" in SENSITIVE_KEYS and "BaseAddress" not in SENSITIVE_KEYS

    wrong_case = {"value": [{"key": "secretToken", "value": PLANTED}]}
    response = requests.put(url, json=wrong_case, headers=headers, verify=_ca(stack), timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "Requested value 'secretToken' was not found."
    assert PLANTED not in response.text
    assert len(stack.graph.secret_history(SP)) == 1

    for record in stack.graph.requests:
        assert PLANTED not in repr(record) and PLANTED not in str(record)
    assert PLANTED not in repr(stack.graph.requests)
    assert stack.graph.requests[0].body == put  # the body is kept for assertions, just not printed


def test_graph_start(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail=f"/jobs/{quote(graph_sp, safe='')}/start")
    headers = _graph_headers(stack)
    assert requests.post(url, headers=headers, verify=_ca(stack), timeout=5).status_code == 204
    assert stack.graph.job_status(SP, graph_sp) == "Active"
    assert stack.graph.quarantine_reason(SP, graph_sp) is None
    stack.graph.set_job_status(SP, graph_sp, "Paused")
    assert requests.post(url, headers=headers, verify=_ca(stack), timeout=5).status_code == 204
    assert stack.graph.start_calls(SP, graph_sp) == ["Quarantine", "Paused"]
    assert stack.graph.hop_count("start") == 2


# --------------------------------------------------------------------------- faults and transport


def test_status_fault_has_retry_after_and_no_side_effect(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/secrets")
    headers = _graph_headers(stack)
    body = {"value": [{"key": "SecretToken", "value": "x"}]}
    stack.graph.inject("put_secrets", Fault.status(429, retry_after="2"), times=2)
    for _ in range(2):
        throttled = requests.put(url, json=body, headers=headers, verify=_ca(stack), timeout=5)
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "2"
        assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert stack.graph.secret_history(SP) == []
    assert requests.put(url, json=body, headers=headers, verify=_ca(stack), timeout=5).status_code == 204

    stack.graph.inject("get_job", Fault.status(503, body={"error": {"code": "custom"}}), times=-1)
    job_url = _sync_url(stack, tail=f"/jobs/{graph_sp}")
    for _ in range(3):
        assert requests.get(job_url, headers=headers, verify=_ca(stack), timeout=5).json() == {
            "error": {"code": "custom"}
        }
    stack.graph.clear_faults()
    assert requests.get(job_url, headers=headers, verify=_ca(stack), timeout=5).status_code == 200
    assert [r.fault for r in stack.graph.records("get_job")] == ["status:503"] * 3 + [None]

    stack.identity.inject("token", Fault.status(500))
    failed = requests.get(stack.identity.endpoint, timeout=5)
    assert failed.status_code == 500 and set(failed.json()) == {"statusCode", "message", "correlationId"}
    with pytest.raises(ValueError, match="no hop"):
        stack.graph.inject("put_secret", Fault.reset())


def test_reset_fault(stack: StandinStack, graph_sp: str) -> None:
    stack.graph.inject("list_jobs", Fault.reset())
    with pytest.raises(requests.ConnectionError):
        requests.get(_sync_url(stack, tail="/jobs"), headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    record = stack.graph.requests[-1]
    assert (record.status, record.fault, record.hop) == (None, "reset", "list_jobs")
    assert requests.get(_sync_url(stack, tail="/jobs"), headers=_graph_headers(stack), verify=_ca(stack), timeout=5).ok


def test_stall_fault_gives_read_timeout(stack: StandinStack, graph_sp: str) -> None:
    stack.graph.inject("get_secrets", Fault.stall(1.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(_sync_url(stack, tail="/secrets"), headers=_graph_headers(stack), verify=_ca(stack), timeout=0.2)
    assert stack.graph.requests[-1].status is None and stack.graph.requests[-1].fault == "stall"


def test_slow_fault_still_applies_the_side_effect(stack: StandinStack, graph_sp: str) -> None:
    url = _sync_url(stack, tail="/secrets")
    body = {"value": [{"key": "SecretToken", "value": "late"}]}
    stack.graph.inject("put_secrets", Fault.slow(0.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.put(url, json=body, headers=_graph_headers(stack), verify=_ca(stack), timeout=0.2)
    deadline = time.monotonic() + 3
    while not stack.graph.secret_history(SP) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stack.graph.secret_history(SP) == [{"SecretToken": "late"}]
    assert stack.graph.records("put_secrets")[-1].fault == "slow"

    stack.graph.inject("put_secrets", Fault.slow(0.1))
    started = time.monotonic()
    assert requests.put(url, json=body, headers=_graph_headers(stack), verify=_ca(stack), timeout=5).status_code == 204
    assert time.monotonic() - started >= 0.1


def test_keep_alive_and_latency(stack: StandinStack, graph_sp: str) -> None:
    headers = _graph_headers(stack)
    with requests.Session() as session:
        session.verify = _ca(stack)
        for _ in range(3):
            assert session.get(_sync_url(stack, tail="/jobs"), headers=headers, timeout=5).status_code == 200
        assert session.put(_sync_url(stack, tail="/secrets"), json={"value": []}, headers=headers, timeout=5).ok
        stack.set_latency(0.1)
        started = time.monotonic()
        assert session.get(_sync_url(stack, tail="/jobs"), headers=headers, timeout=5).ok
        assert time.monotonic() - started >= 0.1
    assert stack.graph.connections_opened == 1
    assert len({r.connection_id for r in stack.graph.requests}) == 1
    assert stack.total_connections() == 1


def test_server_survives_garbage_and_handler_bugs(
    stack: StandinStack, graph_sp: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_connection(("127.0.0.1", stack.identity.port), timeout=2) as raw:
        raw.sendall(b"\x00\x01garbage that is not HTTP\r\n\r\n")
        raw.recv(1024)
    with socket.create_connection(("127.0.0.1", stack.graph.port), timeout=2):
        # A TLS client that never says hello must not block anybody else.
        response = requests.get(
            _sync_url(stack, tail="/jobs"), headers=_graph_headers(stack), verify=_ca(stack), timeout=2
        )
        assert response.status_code == 200

    def boom(request: object) -> None:
        raise RuntimeError(PLANTED)

    monkeypatch.setattr(stack.graph, "_handle", boom)
    broken = requests.get(_sync_url(stack, tail="/jobs"), headers=_graph_headers(stack), verify=_ca(stack), timeout=5)
    assert broken.status_code == 500 and PLANTED not in broken.text
    monkeypatch.undo()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(_sync_url(stack, tail="/jobs"), timeout=5)  # certifi does not trust the test CA


def test_stop_cuts_keep_alive_connections(stack: StandinStack) -> None:
    graph = GraphStandin(ssl_context=stack.certificates.server_context()).start()
    graph.add_service_principal(SP)
    graph.add_job(SP)
    headers = _graph_headers(stack)
    with requests.Session() as session:
        session.verify = _ca(stack)
        url = f"{graph.url}/v1.0/servicePrincipals/{SP}/synchronization/jobs"
        assert session.get(url, headers=headers, timeout=5).ok
        graph.stop()
        with pytest.raises(requests.ConnectionError):
            session.get(url, headers=headers, timeout=5)


def test_record_repr_and_misc(stack: StandinStack) -> None:
    record = RequestRecord("PUT", "/x", {}, "put_secrets", 204, 1.0, True, {"value": PLANTED}, 7, None, 42)
    assert PLANTED not in repr(record) and "body=<42 bytes>" in repr(record)
    assert decode_token("not.a.token") is None and decode_token("garbage") is None
    env = stack.environ()
    assert env["IDENTITY_ENDPOINT"] == f"{stack.identity.url}/msi/token"
    assert env["IDENTITY_HEADER"] == stack.identity.identity_header
    assert env["REQUESTS_CA_BUNDLE"] == stack.certificates.ca_bundle_path
    assert stack.keyvault is stack.vaults["standin-kv"] and stack.keyvault.url.startswith("https://127.0.0.1:")
    extra = stack.add_vault("second-kv")
    assert extra.running and stack.vaults["second-kv"] is extra and extra.url != stack.keyvault.url
    assert isinstance(stack.identity, ManagedIdentityStandin) and stack.identity.url.startswith("http://")
    assert isinstance(stack.certificates, TestCertificates)
