"""Issue #3, item 5: bad input, fuzzed.

HTTP bodies (random bytes, random JSON, deep nesting, wrong types, caller-chosen fields, huge bodies)
and event payloads (webhook batches, and ``func.EventGridEvent`` / ``func.CloudEvent`` objects handed
to the trigger) never produce a 500 (or any 5xx), never raise out of the trigger, and never cause a
managed-identity, Key Vault or Graph call: the stand-ins' request logs stay empty.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.triggers.http_api import MAX_BODY_BYTES, MAX_EVENTS_PER_BATCH
from standins import StandinStack
from tests.harness import Harness, HttpResult

VAULT = "standin-kv"
SECRET = "fuzz-token"
TARGET = "t1"

#: Answers that bad input may get: acknowledged (an event batch with nothing to do), or refused.
ALLOWED = {200, 400, 404, 405, 413}


#: Example counts per property, used in the decorators and reported.
EXAMPLES = {
    "bytes": 100,
    "json": 100,
    "wrong_types": 80,
    "nesting": 30,
    "huge": 10,
    "batch_count": 5,
    "webhook_events": 80,
    "trigger_eventgrid": 80,
    "trigger_cloudevents": 80,
    "hostile_names": 50,
}


def fuzz_settings(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)

#: Names that must never reach a URL: traversal, encoded separators, queries, control characters.
HOSTILE_NAMES = [
    "../x",
    "..",
    "a/b",
    "%2F",
    "a%2Fb",
    "x?y=1",
    "x#y",
    "name\n",
    "name\r\nHost: evil",
    " ",
    "",
    "ünïcode",
    "a" * 200,
    "fuzz-token/..",
    "fuzz-token?api-version=1",
]

KEY_VAULT_TYPES = [
    "Microsoft.KeyVault.SecretNewVersionCreated",
    "Microsoft.KeyVault.SecretNearExpiry",
    "Microsoft.KeyVault.SecretExpired",
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.EventGrid.SubscriptionValidationEvent",
]


@pytest.fixture
def fuzz(harness: Harness) -> Harness:
    harness.scenario.add_target(TARGET, secret_name=SECRET)
    harness.configure()
    return harness


def all_requests(stack: StandinStack) -> int:
    return sum(len(server.requests) for server in (stack.identity, stack.graph, *stack.vaults.values()))


def post_bad(harness: Harness, raw: bytes) -> HttpResult:
    before = all_requests(harness.stack)
    result = harness.post(raw=raw)
    assert result.status in ALLOWED, result.text[:300]
    assert result.status < 500
    assert isinstance(result.body, dict), "every answer is a JSON object"
    assert not result.body.get("results"), "bad input must not sync anything"
    assert all_requests(harness.stack) == before, "bad input reached a stand-in"
    return result


def fire_bad(harness: Harness, event: Any) -> None:
    before = all_requests(harness.stack)
    raised = harness.fire(event)
    assert raised is None, f"the trigger raised {type(raised).__name__} for a malformed event"
    assert all_requests(harness.stack) == before, "a malformed event reached a stand-in"


def names_a_configured_secret(event_type: Any, data: Any) -> bool:
    """A well-formed new-version event for the configured secret is valid input (it syncs): excluded."""
    if event_type != "Microsoft.KeyVault.SecretNewVersionCreated" or not isinstance(data, dict):
        return False
    keys = {str(k).strip().lower(): v for k, v in data.items()}
    vault, secret = keys.get("vaultname"), keys.get("objectname")
    return (
        isinstance(vault, str)
        and isinstance(secret, str)
        and vault.strip().lower() == VAULT
        and secret.strip().lower() == SECRET
    )


def is_valid_sync_request(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    if set(document) - {"targets", "secrets", "dryRun"} or ("targets" in document and "secrets" in document):
        return False
    if not isinstance(document.get("dryRun", False), bool):
        return False
    for field, known in (("targets", TARGET), ("secrets", SECRET)):
        if field in document:
            names = document[field]
            if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
                return False
            return all(n.lower() == known for n in names)
    return True  # {} or {"dryRun": bool}: sync everything


# --- HTTP bodies -------------------------------------------------------------------------------------


@fuzz_settings("bytes")
@given(raw=st.binary(max_size=2048))
def test_random_bytes(fuzz: Harness, raw: bytes) -> None:
    try:
        document = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        document = None
    assume(not is_valid_sync_request(document))
    post_bad(fuzz, raw)


@fuzz_settings("json")
@given(document=JSON)
def test_random_json(fuzz: Harness, document: Any) -> None:
    assume(not is_valid_sync_request(document))
    if isinstance(document, list):
        assume(
            not any(
                names_a_configured_secret(e.get("eventType"), e.get("data")) for e in document if isinstance(e, dict)
            )
        )
    post_bad(fuzz, json.dumps(document).encode())


CALLER_CHOSEN = st.sampled_from(
    [
        "servicePrincipalId",
        "jobId",
        "keyVault",
        "keyVaultSecret",
        "vaultUrl",
        "url",
        "BaseAddress",
        "baseAddress",
        "SecretToken",
        "value",
        "secretValue",
        "graph",
        "endpoint",
        "managedIdentityClientId",
        "templateId",
        "version",
        "Targets",
        "dryrun",
    ]
)
WRONG_NAMES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=20),
    st.just([]),
    st.lists(
        st.one_of(st.integers(), st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5))), min_size=1
    ),
    st.lists(st.sampled_from([TARGET, SECRET]), min_size=1).map(
        lambda names: [{"name": n, "value": "x"} for n in names]
    ),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8)),
)


@fuzz_settings("wrong_types")
@given(
    base=st.fixed_dictionaries(
        {},
        optional={
            "targets": st.one_of(WRONG_NAMES, st.just([TARGET])),
            "secrets": st.one_of(WRONG_NAMES, st.just([SECRET])),
            "dryRun": st.one_of(st.booleans(), st.none(), st.integers(), st.text(max_size=5), st.just("true")),
        },
    ),
    extra=st.dictionaries(CALLER_CHOSEN, JSON, max_size=3),
)
def test_wrong_types_and_caller_chosen_fields(fuzz: Harness, base: dict[str, Any], extra: dict[str, Any]) -> None:
    document = {**base, **extra}
    assume(not is_valid_sync_request(document))
    result = post_bad(fuzz, json.dumps(document).encode())
    assert result.status in (400, 404)


@fuzz_settings("nesting")
@given(
    depth=st.integers(100, 100_000),
    shape=st.sampled_from(["array", "object", "in-targets", "in-event-data"]),
)
def test_deep_nesting(fuzz: Harness, depth: int, shape: str) -> None:
    if shape == "array":
        raw = "[" * depth + "]" * depth
    elif shape == "object":
        raw = '{"a":' * depth + "1" + "}" * depth
    elif shape == "in-targets":
        raw = '{"targets":' + "[" * depth + "]" * depth + "}"
    else:
        raw = (
            '[{"eventType":"Microsoft.KeyVault.SecretNewVersionCreated","id":"1","data":'
            + '{"VaultName":' * depth
            + '"x"'
            + "}" * depth
            + "}]"
        )
    post_bad(fuzz, raw.encode())


@fuzz_settings("huge")
@given(extra=st.integers(1, 256 * 1024), kind=st.sampled_from(["json-string", "array", "garbage"]))
def test_bodies_over_the_limit_get_413(fuzz: Harness, extra: int, kind: str) -> None:
    size = MAX_BODY_BYTES + extra
    if kind == "json-string":
        raw = b'{"targets": ["' + b"x" * (size - 17) + b'"]}'
    elif kind == "array":
        raw = b"[" + b"{}," * (size // 3) + b"{}]"
    else:
        raw = bytes(range(256)) * (size // 256 + 1)
    assert len(raw) > MAX_BODY_BYTES
    assert post_bad(fuzz, raw).status == 413


def test_a_body_at_the_limit_is_read(fuzz: Harness) -> None:
    raw = b'{"targets": ["' + b"x" * (MAX_BODY_BYTES - 17) + b'"]}'
    assert len(raw) <= MAX_BODY_BYTES
    assert post_bad(fuzz, raw).status == 404  # read and refused (no such target), not 413


@fuzz_settings("batch_count")
@given(count=st.integers(MAX_EVENTS_PER_BATCH + 1, 340_000))
def test_batches_over_event_grids_event_count_get_413(fuzz: Harness, count: int) -> None:
    """Under the byte limit, ~350,000 empty events would each be answered and logged: refused."""
    raw = b"[" + b"{}," * (count - 1) + b"{}]"
    assert len(raw) <= MAX_BODY_BYTES
    assert post_bad(fuzz, raw).status == 413


def test_a_full_event_grid_batch_is_read(fuzz: Harness) -> None:
    raw = json.dumps([{"id": str(i), "eventType": "Other.Event"} for i in range(MAX_EVENTS_PER_BATCH)]).encode()
    result = post_bad(fuzz, raw)
    assert result.status == 200
    assert len(result.body["events"]) == MAX_EVENTS_PER_BATCH


# --- Event payloads ----------------------------------------------------------------------------------

DATA_VALUE = st.one_of(st.sampled_from([VAULT, SECRET, *HOSTILE_NAMES]), JSON)
EVENT_DATA = st.one_of(
    JSON,
    st.dictionaries(
        st.sampled_from(
            ["VaultName", "vaultName", " ObjectName ", "objectName", "ObjectType", "Version", "NBF", "EXP", "Id"]
        ),
        DATA_VALUE,
        max_size=6,
    ),
)
EVENT_TYPE = st.one_of(st.sampled_from(KEY_VAULT_TYPES), st.text(max_size=40), st.none(), st.integers())


@st.composite
def webhook_events(draw: st.DrawFn) -> Any:
    cloud = draw(st.booleans())
    event: dict[str, Any] = {
        "id": draw(st.one_of(st.text(max_size=20), st.integers(), st.none())),
        ("type" if cloud else "eventType"): draw(EVENT_TYPE),
        "data": draw(EVENT_DATA),
    }
    if cloud:
        event["specversion"] = draw(st.sampled_from(["1.0", 1, None, ""]))
        event["source"] = draw(st.text(max_size=20))
    else:
        event["subject"] = draw(st.one_of(st.text(max_size=20), st.none()))
        event["topic"] = draw(st.text(max_size=20))
    drop = draw(st.lists(st.sampled_from(sorted(event)), max_size=2))
    return {k: v for k, v in event.items() if k not in drop}


@fuzz_settings("webhook_events")
@given(batch=st.one_of(st.lists(st.one_of(webhook_events(), JSON), max_size=4), webhook_events()))
def test_malformed_webhook_deliveries(fuzz: Harness, batch: Any) -> None:
    events = batch if isinstance(batch, list) else [batch]
    for event in events:
        if isinstance(event, dict):
            assume(not names_a_configured_secret(event.get("eventType", event.get("type")), event.get("data")))
    post_bad(fuzz, json.dumps(batch).encode())


@fuzz_settings("trigger_eventgrid")
@given(
    event_id=st.one_of(st.text(max_size=20), st.none(), st.integers()),
    event_type=EVENT_TYPE,
    data=EVENT_DATA,
    subject=st.one_of(st.text(max_size=20), st.none()),
)
def test_malformed_event_grid_events_to_the_trigger(
    fuzz: Harness, event_id: Any, event_type: Any, data: Any, subject: Any
) -> None:
    assume(not names_a_configured_secret(event_type, data))
    event = func.EventGridEvent(
        id=event_id,
        data=data,
        topic="/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/x",
        subject=subject,
        event_type=event_type,
        event_time=datetime.now(timezone.utc),
        data_version="1",
    )
    fire_bad(fuzz, event)


@fuzz_settings("trigger_cloudevents")
@given(
    event_id=st.one_of(st.text(max_size=20), st.none()),
    event_type=EVENT_TYPE,
    data=st.one_of(EVENT_DATA, st.binary(max_size=20)),
)
def test_malformed_cloud_events_to_the_trigger(fuzz: Harness, event_id: Any, event_type: Any, data: Any) -> None:
    assume(not names_a_configured_secret(event_type, data))
    event = func.CloudEvent(id=event_id, source="/x", type=event_type, specversion="1.0", data=data, subject=None)
    fire_bad(fuzz, event)


@fuzz_settings("hostile_names")
@given(
    vault=st.sampled_from([VAULT, *HOSTILE_NAMES]),
    secret=st.sampled_from([SECRET, *HOSTILE_NAMES]),
    channel=st.sampled_from(["trigger", "webhook"]),
)
def test_hostile_names_in_events_never_reach_a_url(fuzz: Harness, vault: str, secret: str, channel: str) -> None:
    assume((vault, secret) != (VAULT, SECRET))
    data = {"VaultName": vault, "ObjectName": secret, "ObjectType": "Secret", "Version": "0" * 32}
    if channel == "trigger":
        fire_bad(fuzz, func.EventGridEvent(
            id="1", data=data, topic="t", subject=secret, event_type=KEY_VAULT_TYPES[0],
            event_time=None, data_version="1",
        ))  # fmt: skip
    else:
        body = [{"id": "1", "eventType": KEY_VAULT_TYPES[0], "subject": secret, "data": data}]
        assert post_bad(fuzz, json.dumps(body).encode()).status == 200  # acknowledged, not retried


def test_the_fuzzed_inputs_left_every_stand_in_untouched(fuzz: Harness) -> None:
    """A control: the same estate does sync when asked properly, so 'no calls' above means something."""
    result = fuzz.post({})
    assert result.status == 200, result.text
    assert all_requests(fuzz.stack) > 0
