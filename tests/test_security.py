"""Issue #3, item 6: nothing from a request or an event reaches a URL unchecked, callers choose only
configured names, vault hosts are pinned to the cloud, and secret values never show up anywhere.

The ``harness`` fixture checks every test here for planted values in logs, responses, raised errors
and printed output; the tests below add what it cannot see (reprs, tracebacks, objects the code builds).
"""

from __future__ import annotations

import json
import pickle
import traceback
import uuid
from typing import Any

import pytest

import function_app
from shared.clients.graph import GraphCall, GraphClient, StoredSecret
from shared.clients.keyvault import ResolvedSecret, SecretReader
from shared.core import identifiers
from shared.core.config import KeyVault, LiteralSource, is_loopback_url, parse_config
from shared.core.errors import ConfigInvalid, GraphRequestFailed, RetryableSyncFailure
from shared.core.redaction import Redactor, SecretValue
from shared.core.retry import Deadline, RetrySettings
from standins import Fault, StandinStack
from tests.harness import Harness, event_grid_event, key_vault_event_data, webhook_event

SP = "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11"
JOB = f"scim.0123456789abcdef0123456789abcdef.{SP}"


def document(**target: Any) -> dict[str, Any]:
    entry = {"name": "t", "servicePrincipalId": SP, "jobId": JOB, "secrets": {"SecretToken": {"keyVaultSecret": "tok"}}}
    entry.update(target)
    return {"keyVaults": [{"name": "contoso-kv"}], "targets": [entry]}


def all_requests(stack: StandinStack) -> int:
    return sum(len(server.requests) for server in (stack.identity, stack.graph, *stack.vaults.values()))


# --- Identifiers that reach a URL ----------------------------------------------------------------------

HOSTILE_JOB_IDS = ["a/b", "..", "scim..x", "../x", "a%2Fb", "%2F", "x?y", "x#y", "scim.x\n", " scim", "", "a" * 300]
HOSTILE_GUIDS = [f"{SP}\n", f"{SP}/../x", "../x", f"{SP}?a=1", f"{SP}%2F", SP.replace("-", "")]


@pytest.mark.parametrize("job_id", HOSTILE_JOB_IDS)
def test_config_rejects_job_ids_that_could_change_a_path(job_id: str) -> None:
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(json.dumps(document(jobId=job_id)))
    assert "targets[0].jobId" in str(caught.value)


@pytest.mark.parametrize("sp_id", HOSTILE_GUIDS)
def test_config_rejects_service_principal_ids_that_are_not_exactly_a_guid(sp_id: str) -> None:
    with pytest.raises(ConfigInvalid, match=r"targets\[0\]\.servicePrincipalId"):
        parse_config(json.dumps(document(servicePrincipalId=sp_id)))


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["targets"][0].update(name="a/b"), "targets[0].name"),
        (lambda d: d["targets"][0].update(name="t\n"), "targets[0].name"),
        (lambda d: d["targets"][0].update(templateId="scim\n"), "targets[0].templateId"),
        (lambda d: d["targets"][0].update(templateId="../x"), "targets[0].templateId"),
        (lambda d: d["targets"][0]["secrets"]["SecretToken"].update(keyVaultSecret="../x"), "keyVaultSecret"),
        (lambda d: d["targets"][0]["secrets"]["SecretToken"].update(keyVaultSecret="tok\n"), "keyVaultSecret"),
        (lambda d: d["targets"][0]["secrets"]["SecretToken"].update(keyVaultSecret="a%2Fb"), "keyVaultSecret"),
        (lambda d: d["keyVaults"][0].update(name="kv\n"), "keyVaults[0].name"),
        (lambda d: d["keyVaults"][0].update(name="../x"), "keyVaults[0].name"),
        (lambda d: d.update(managedIdentityClientId=f"{SP}\n"), "managedIdentityClientId"),
    ],
)
def test_config_rejects_other_hostile_names(mutate: Any, path: str) -> None:
    doc = document()
    mutate(doc)
    with pytest.raises(ConfigInvalid) as caught:
        parse_config(json.dumps(doc))
    assert path in str(caught.value)


def test_identifier_patterns_match_the_whole_value() -> None:
    """``re.match`` with ``$`` accepts a trailing newline; every check must be a full match."""
    assert identifiers.is_guid(SP) and not identifiers.is_guid(SP + "\n")
    assert identifiers.is_job_id(JOB) and not identifiers.is_job_id(JOB + "\n")
    assert identifiers.is_secret_name("tok") and not identifiers.is_secret_name("tok\n")
    assert identifiers.is_vault_name("contoso-kv") and not identifiers.is_vault_name("contoso-kv\n")
    assert identifiers.is_target_name("t") and not identifiers.is_target_name("t\n")


def test_a_hostile_job_id_in_the_config_runs_nothing(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    doc = harness.scenario.config_document()
    doc["targets"][0]["jobId"] = "scim.x/../../servicePrincipals/other"
    harness.set_config(json.dumps(doc))
    result = harness.post({})
    assert result.status == 500, result.text
    assert result.body["error"]["code"] == "ConfigInvalid"
    assert "targets[0].jobId" in result.text
    assert all_requests(harness.stack) == 0


class _NoCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token may be asked for a refused request")


def _graph_client(stack: StandinStack) -> GraphClient:
    return GraphClient(
        stack.graph.url, "v1.0", "https://graph.microsoft.com/.default", _NoCredential(), RetrySettings(), 1
    )  # type: ignore[arg-type]


def _call() -> GraphCall:
    return GraphCall(Deadline(5), Redactor(), [])


@pytest.mark.parametrize("job_id", HOSTILE_JOB_IDS)
def test_the_graph_client_refuses_hostile_ids_itself(harness: Harness, job_id: str) -> None:
    """Defence in depth: even an id that bypassed config validation never reaches a URL."""
    client = _graph_client(harness.stack)
    with pytest.raises(GraphRequestFailed):
        client.get_job(SP, job_id, _call())
    with pytest.raises(GraphRequestFailed):
        client.validate_credentials(SP, job_id, {}, None, _call())
    for sp_id in HOSTILE_GUIDS:
        with pytest.raises(GraphRequestFailed):
            client.get_secrets(sp_id, _call())
    assert all_requests(harness.stack) == 0


def test_job_ids_are_url_encoded_as_one_path_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were the pattern ever widened, the id would still stay inside its own segment."""
    graph = GraphClient("https://graph.example", "v1.0", "s", _NoCredential(), RetrySettings(), 1)  # type: ignore[arg-type]
    monkeypatch.setattr(identifiers, "is_job_id", lambda value: True)
    path = graph._job_path(SP, "../x/%2F?y#z", "start")
    assert path == f"/servicePrincipals/{SP}/synchronization/jobs/..%2Fx%2F%252F%3Fy%23z/start"


def test_a_configured_job_id_reaches_graph_exactly(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    assert harness.post({}).status == 200
    paths = [r.path for r in harness.stack.graph.records("validate")]
    assert paths == [
        f"/v1.0/servicePrincipals/{target.service_principal_id}/synchronization/jobs/{target.job_id}/validateCredentials"
    ]


# --- Only configured names over HTTP --------------------------------------------------------------------

CALLER_CHOSEN = [
    {"servicePrincipalId": SP},
    {"targets": ["t1"], "servicePrincipalId": SP},
    {"targets": ["t1"], "jobId": JOB},
    {"keyVault": "evil-kv"},
    {"secrets": ["t1-token"], "keyVault": "evil-kv"},
    {"vaultUrl": "https://evil.vault.azure.net"},
    {"targets": ["t1"], "BaseAddress": "https://evil.example/scim"},
    {"baseAddress": "https://evil.example/scim"},
    {"targets": ["t1"], "value": "caller-chosen-token"},
    {"targets": ["t1"], "SecretToken": "caller-chosen-token"},
    {"secrets": [{"name": "t1-token", "value": "caller-chosen-token"}]},
    {"targets": [{"name": "t1", "servicePrincipalId": SP}]},
    {"targets": [{"name": "t1", "BaseAddress": "https://evil.example"}]},
    {"graph": {"endpoint": "https://evil.example"}},
    {"managedIdentityClientId": SP},
    {"secrets": {"t1-token": "caller-chosen-token"}},
]


@pytest.mark.parametrize("body", CALLER_CHOSEN, ids=lambda b: ",".join(b))
def test_callers_cannot_choose_what_a_target_points_at(harness: Harness, body: dict[str, Any]) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    result = harness.post(body)
    assert result.status == 400, result.text
    assert result.body["error"]["code"] == "RequestInvalid"
    assert all_requests(harness.stack) == 0


@pytest.mark.parametrize("field", ["targets", "secrets"])
def test_unknown_names_of_an_impossible_shape_are_refused_and_not_echoed(harness: Harness, field: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    hostile = ["../x", "a/b", "%2F..", "x?y=1"]
    result = harness.post({field: hostile})
    assert result.status == 404, result.text
    assert not any(name in result.text for name in hostile)
    assert all_requests(harness.stack) == 0


# --- Events cannot point anywhere ---------------------------------------------------------------------------


def test_an_event_cannot_choose_the_vault_url(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    data = key_vault_event_data(target.secret_name, Id="https://evil.vault.azure.net/secrets/x/" + "0" * 32)
    event = event_grid_event("SecretNewVersionCreated", data, subject="../../evil")
    assert harness.fire(event) is None
    assert harness.scenario.job_token("t1") == harness.scenario.current_token(target.secret_name)
    reads = harness.stack.keyvault.records("secret")
    assert reads and all(r.path.startswith(f"/secrets/{target.secret_name}") for r in reads)


@pytest.mark.parametrize(
    ("vault", "secret"),
    [("standin-kv", "../x"), ("../x", "t1-token"), ("standin-kv", "a/b"), ("standin-kv", "t1-token%2F.."),
     ("standin-kv", "t1-token?x"), ("other-kv", "t1-token"), ("standin-kv", "unknown-secret")],
)  # fmt: skip
@pytest.mark.parametrize("channel", ["trigger", "webhook"])
def test_events_naming_anything_else_call_nothing(harness: Harness, vault: str, secret: str, channel: str) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    data = key_vault_event_data(secret, vault=vault)
    if channel == "trigger":
        assert harness.fire(event_grid_event("SecretNewVersionCreated", data)) is None
    else:
        result = harness.post([webhook_event("SecretNewVersionCreated", data)])
        assert result.status == 200, result.text
        assert not any(name in result.text for name in ("../x", "a/b"))
    assert all_requests(harness.stack) == 0


# --- Vault hosts -------------------------------------------------------------------------------------------

VAULT_URLS = [
    ("global", "https://contoso-kv.vault.azure.net", True),
    ("global", "https://contoso-kv.vault.azure.net/", True),
    ("global", "https://evil.example", False),
    ("global", "https://contoso-kv.vault.azure.net.evil.example", False),
    ("global", "https://evil.example/contoso-kv.vault.azure.net", False),
    ("global", "https://evil.example?x=.vault.azure.net", False),
    ("global", "https://evil.example#.vault.azure.net", False),
    ("global", "https://contoso-kv.vault.azure.net@evil.example", False),
    ("global", "https://evilvault.azure.net", False),
    ("global", "http://contoso-kv.vault.azure.net", False),
    ("global", "https://contoso-kv.vault.usgovcloudapi.net", False),
    ("usgov", "https://contoso-kv.vault.usgovcloudapi.net", True),
    ("usgov", "https://contoso-kv.vault.azure.net", False),
    ("global", "https://127.0.0.1:8443", True),
    ("global", "https://localhost:8443", True),
    ("global", "https://[::1]:8443", True),
    ("global", "https://localhost.evil.example", False),
    ("global", "https://127.0.0.1.nip.io", False),
    ("global", "https://kv.corp.example", False),
]


@pytest.mark.parametrize(("cloud", "url", "ok"), VAULT_URLS, ids=[f"{c}-{u}" for c, u, _ in VAULT_URLS])
def test_vault_urls_must_end_with_the_clouds_suffix_unless_loopback(cloud: str, url: str, ok: bool) -> None:
    doc = {**document(), "cloud": cloud, "keyVaults": [{"name": "contoso-kv", "url": url}]}
    if ok:
        parse_config(json.dumps(doc))
    else:
        with pytest.raises(ConfigInvalid, match=r"keyVaults\[0\]\.url"):
            parse_config(json.dumps(doc))


def test_private_vault_hosts_must_be_listed_exactly() -> None:
    doc = {**document(), "keyVaults": [{"name": "contoso-kv", "url": "https://kv.corp.example"}]}
    parse_config(json.dumps(doc), allowed_vault_hosts={"kv.corp.example"})
    for other in ("https://sub.kv.corp.example", "https://kv.corp.example.evil.example"):
        doc["keyVaults"][0]["url"] = other
        with pytest.raises(ConfigInvalid):
            parse_config(json.dumps(doc), allowed_vault_hosts={"kv.corp.example"})


@pytest.mark.parametrize(
    ("url", "relaxed"),
    [
        ("https://127.0.0.1:8443", True),
        ("https://localhost:8443", True),
        ("https://[::1]:8443", True),
        ("https://contoso-kv.vault.azure.net", False),
        ("https://kv.corp.example", False),  # an allowed private host keeps the check
        ("https://localhost.evil.example", False),
        ("https://127.0.0.1.nip.io", False),
    ],
)
def test_the_challenge_resource_check_is_relaxed_for_loopback_only(
    monkeypatch: pytest.MonkeyPatch, url: str, relaxed: bool
) -> None:
    import azure.keyvault.secrets

    seen: dict[str, Any] = {}

    class RecordingClient:
        def __init__(self, **kwargs: Any) -> None:
            seen.update(kwargs)

    monkeypatch.setattr(azure.keyvault.secrets, "SecretClient", RecordingClient)
    assert is_loopback_url(url) is relaxed
    reader = SecretReader(KeyVault("contoso-kv", url), _NoCredential(), RetrySettings(), 1)  # type: ignore[arg-type]
    reader._secret_client()
    assert seen["verify_challenge_resource"] is (not relaxed)


# --- Secret values never shown ---------------------------------------------------------------------------

PLANTED = "CANARY-planted-7f3e9a5b1c"


def test_secret_values_never_show_in_the_objects_the_code_builds() -> None:
    value = SecretValue(PLANTED)
    config = parse_config(
        json.dumps(document(secrets={"SecretToken": {"keyVaultSecret": "tok"}, "ClientIdentifier": {"value": PLANTED}}))
    )
    resolved = ResolvedSecret(
        ref=config.targets[0].secrets["SecretToken"].ref,  # type: ignore[union-attr]
        name="tok",
        vault="contoso-kv",
        version="0" * 32,
        value=value,
        expires_on=None,
        not_before=None,
        read_started=0.0,
        read_finished=0.0,
    )
    objects = [
        value,
        config,
        config.targets[0],
        LiteralSource(value),
        resolved,
        StoredSecret("SecretToken", value, False),
    ]
    for obj in objects:
        for text in (repr(obj), str(obj), f"{obj}", f"{obj!r}", "%s" % (obj,), format(obj, "")):  # noqa: UP031
            assert PLANTED not in text, type(obj).__name__
    assert value.reveal() == PLANTED
    with pytest.raises(TypeError):
        pickle.dumps(value)


def test_the_redactor_scrubs_every_known_value() -> None:
    redactor = Redactor([SecretValue(PLANTED), SecretValue("abc")])  # too short to scrub: ordinary words stay
    assert redactor.scrub(f"echo {PLANTED} and {PLANTED}!") == "echo *** and ***!"
    assert redactor.scrub("abc") == "abc"


def _echo_body(token: str) -> dict[str, Any]:
    """A misbehaving service that echoes what it was sent, in every field of its error."""
    nested = json.dumps({"code": token, "message": f"rejected {token}"})
    return {"error": {"code": token, "message": nested, "innerError": {"request-id": token}}}


@pytest.mark.parametrize("hop", ["validate", "get_secrets", "put_secrets"])
def test_a_graph_error_echoing_the_token_is_redacted(harness: Harness, hop: str) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    token = harness.scenario.current_token(target.secret_name)
    harness.stack.graph.inject(hop, Fault.status(400, body=_echo_body(token), headers={"request-id": token}), times=-1)
    result = harness.post({})
    assert result.status == 422, result.text
    assert "***" in result.text
    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data(target.secret_name)))
    assert raised is None  # permanent: logged, not raised
    # The fixture checks the response, the logs and the transcript for the token.


def test_a_key_vault_error_echoing_the_value_is_never_repeated(harness: Harness) -> None:
    target = harness.scenario.add_target("t1")
    harness.configure()
    token = harness.scenario.current_token(target.secret_name)
    harness.stack.keyvault.inject("secret", Fault.status(403, body=_echo_body(token)), times=-1)
    result = harness.post({})
    assert result.status == 422, result.text
    assert result.result("t1")["error"]["code"] == "KeyVaultForbidden"


def test_raised_errors_and_their_tracebacks_hold_no_secret(harness: Harness) -> None:
    """The Event Grid trigger's raise, with its whole chain, and the outcome objects, for a retryable failure."""
    target = harness.scenario.add_target("t1")
    harness.configure()
    token = harness.scenario.current_token(target.secret_name)
    harness.stack.graph.inject("put_secrets", Fault.status(503, body=_echo_body(token)), times=-1)
    raised = harness.fire(event_grid_event("SecretNewVersionCreated", key_vault_event_data(target.secret_name)))
    assert isinstance(raised, RetryableSyncFailure)
    harness.transcript.append("".join(traceback.format_exception(raised)))
    harness.transcript.append(repr(raised))
    # The outcome objects themselves, as a caller of the service would hold them.
    service = function_app.state.service()
    config = service.worker.config()
    outcome = service.sync(config, list(config.targets), dry_run=False, invocation_id=str(uuid.uuid4()))
    for item in (outcome, *outcome.results, *(r.error for r in outcome.results if r.error)):
        harness.transcript.extend([repr(item), str(item)])
    harness.transcript.append(json.dumps(outcome.to_dict()))
    assert outcome.results[0].error is not None and outcome.results[0].error.code == "GraphUnavailable"
