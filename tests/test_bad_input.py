"""Issue #11, points 7-11: input as an attacker or a careless operator writes it.

Each case was tried against the product; the docstrings say what it did before. Every response, raised
error and log record is searched by the harness for the planted secret values, and here also for their
encoded forms and for the oversized input itself.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import azure.functions as func
import pytest

from shared.core.config import load_config
from shared.core.errors import ConfigInvalid
from shared.core.redaction import Redactor, SecretValue, encoded_forms
from standins import Fault
from tests.harness import Harness, event_grid_event, key_vault_event_data, webhook_event

ROOT = Path(__file__).resolve().parent.parent
HUGE = 900 * 1024


def nothing_called(harness: Harness) -> bool:
    stack = harness.stack
    return not stack.keyvault.requests and not stack.graph.requests and not stack.identity.requests


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    return "".join(formatter.format(r) + repr(r.__dict__) for r in caplog.records)


# --- 7. duplicate keys in a request body ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"targets":["t1"],"dryRun":true,"dryRun":false}',  # was: the last one won, a real push
        b'{"targets":["t1"],"targets":["t1"]}',
        b'[{"id":"1","eventType":"x","eventType":"Microsoft.KeyVault.SecretNewVersionCreated","data":{}}]',
        b'{"specversion":"1.0","id":"1","type":"x","data":{"ObjectName":"a","ObjectName":"t1-token"}}',
    ],
    ids=["dry-run-twice", "targets-twice", "event-type-twice", "nested-in-a-cloud-event"],
)
def test_a_body_with_a_duplicate_key_is_refused_and_runs_nothing(harness: Harness, raw: bytes) -> None:
    harness.scenario.add_target("t1")
    harness.configure()

    result = harness.post(raw=raw)

    assert result.status == 400, result.text
    assert result.body["error"]["code"] == "RequestInvalid"
    assert "twice" in result.body["error"]["message"]
    assert nothing_called(harness)


def test_a_duplicate_key_of_an_odd_shape_is_not_echoed(harness: Harness) -> None:
    harness.configure()
    odd = "x" * 5000
    result = harness.post(raw=json.dumps({}).replace("}", f'"{odd}":1,"{odd}":2}}').encode())
    assert result.status == 400
    assert odd[:100] not in result.text


# --- 8. names must have the strict shape before they are compared ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"secrets": ["t1-to\u212aen"]},  # KELVIN SIGN: "t1-to\u212aen".lower() == "t1-token"; was: selected and pushed
        {"secrets": ["T1-TO\u212aEN"]},
        {"secrets": ["t1-token\n"]},
        {"targets": ["t\u0131"]},  # DOTLESS I
        {"targets": ["t1 "]},
    ],
    ids=["kelvin", "kelvin-upper", "newline", "dotless-i", "trailing-space"],
)
def test_a_lookalike_name_selects_nothing(harness: Harness, body: dict[str, Any]) -> None:
    harness.scenario.add_target("t1")
    harness.scenario.add_target("ti")
    harness.configure()

    result = harness.post(body)

    assert result.status == 404, result.text
    assert result.body["error"]["code"] in ("UnknownSecret", "UnknownTarget")
    assert "impossible shape" in result.body["error"]["message"]
    assert result.body["error"]["names"] == []
    assert nothing_called(harness)


def test_a_lookalike_name_in_an_event_selects_nothing(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    result = harness.post([webhook_event("SecretNewVersionCreated", key_vault_event_data("t1-to\u212aen"))])
    assert result.status == 200, result.text
    assert result.body["events"][0]["outcome"] == "failed"
    assert nothing_called(harness)


# --- 9. every echoed field is capped --------------------------------------------------------------------------


def test_a_huge_event_type_is_not_echoed_whole(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    event = webhook_event("SecretNewVersionCreated", key_vault_event_data("t1-token"))
    event["eventType"] = "A" * HUGE  # was: echoed whole in the response and in a log record
    event["id"] = "B" * (HUGE // 10)

    result = harness.post([event])

    assert result.status == 200, result.text
    assert len(result.text) < 2000
    record = result.body["events"][0]
    assert len(record["eventType"]) <= 200 and len(record["id"]) <= 128
    logged = everything_logged(caplog)
    assert "A" * 201 not in logged and "B" * 129 not in logged
    assert nothing_called(harness)


def test_a_huge_event_type_through_the_event_grid_trigger_is_capped(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    event = event_grid_event("SecretNewVersionCreated", key_vault_event_data("t1-token"))
    huge = func.EventGridEvent(
        id="C" * HUGE,
        data=event.get_json(),
        topic=event.topic,
        subject=event.subject,
        event_type="D" * HUGE,
        event_time=event.event_time,
        data_version="1",
    )
    assert harness.fire(huge) is None
    logged = everything_logged(caplog)
    assert "C" * 129 not in logged and "D" * 201 not in logged


@pytest.mark.parametrize(
    "body",
    [
        {"targets": ["t" * HUGE]},
        {"secrets": ["s" * HUGE]},
        {"t" * HUGE: 1},
    ],
    ids=["target-name", "secret-name", "field-name"],
)
def test_huge_names_are_not_echoed(harness: Harness, body: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    result = harness.post(body)
    assert result.status in (400, 404)
    assert len(result.text) < 2000
    assert len(everything_logged(caplog)) < HUGE


def test_a_huge_graph_error_message_is_capped(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    harness.scenario.add_target("t1")
    harness.configure()
    body = {"error": {"code": "E" * HUGE, "message": "M" * HUGE}}
    harness.stack.graph.inject("validate", Fault.status(400, body=body), times=-1)

    result = harness.post({})

    assert result.status == 422
    error = result.result("t1")["error"]
    assert len(error["message"]) < 1500 and len(error["graphErrorCode"]) <= 200
    assert len(result.text) < 5000
    assert "M" * 501 not in everything_logged(caplog)


def test_a_huge_validation_code_is_not_echoed(harness: Harness) -> None:
    event = {"id": "1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
             "data": {"validationCode": "V" * HUGE}}  # fmt: skip
    result = harness.post([event])
    assert result.status == 400
    assert "V" * 200 not in result.text


# --- 10. SYNC_CONFIG: a byte-order mark, a non-object, and never an echo of the document ----------------------


def test_sync_config_text_with_a_byte_order_mark_is_accepted(harness: Harness) -> None:
    harness.scenario.add_target("t1")
    harness.set_config("\ufeff" + harness.scenario.config_json())  # was: taken for a path, 500 echoing the text
    result = harness.post({"dryRun": True})
    assert result.status == 200, result.text


def test_a_sync_config_file_with_a_byte_order_mark_is_accepted(harness: Harness, tmp_path: Path) -> None:
    harness.scenario.add_target("t1")
    config = tmp_path / "sync-config.json"
    config.write_bytes(b"\xef\xbb\xbf" + harness.scenario.config_json().encode())
    harness.set_config(str(config))
    result = harness.post({"dryRun": True})
    assert result.status == 200, result.text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('["not", "an", "object"]', "must be a JSON object"),
        ('[{"targets": []}]', "must be a JSON object"),
        ('"a string"', "must be a JSON object"),
        ("\ufeff[1]", "must be a JSON object"),
        (
            '  \n{"targets": [{"name": "x", "secrets": {"BaseAddress": {"value": "https://scim.example/v2"}}',
            "not valid JSON",
        ),
        (
            'targets: [{"name": "x", "secrets": {"BaseAddress": {"value": "https://scim.example/v2"}}]}',
            "not valid JSON",
        ),
    ],
    ids=["array", "array-of-object", "string", "bom-array", "truncated", "missing-brace"],
)
def test_a_document_that_is_not_an_object_is_config_invalid_and_never_echoed(
    harness: Harness, text: str, problem: str
) -> None:
    harness.set_config(text)  # was: taken for a path; the 500 quoted the document as a file name

    result = harness.post({})

    assert result.status == 500, result.text
    error = result.body["error"]
    assert error["code"] == "ConfigInvalid"
    assert problem in error["message"] and "cannot read" not in error["message"]
    for piece in ("scim.example", "BaseAddress", "targets", 'an object"', "a string"):
        assert piece not in error["message"].replace("a JSON object", ""), piece


def test_a_duplicate_key_in_sync_config_is_named_only_when_it_has_a_key_s_shape(harness: Harness) -> None:
    odd = "k" * HUGE
    harness.set_config('{"targets": [], "targets": []}')
    assert "targets: appears twice" in harness.post({}).text
    harness.set_config(f'{{"{odd}": 1, "{odd}": 2}}')
    result = harness.post({})
    assert result.status == 500 and len(result.text) < 2000


def test_a_path_that_does_not_exist_is_named_only_by_a_safe_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match=r"cannot read file 'missing\.json'"):
        load_config({"SYNC_CONFIG": str(tmp_path / "missing.json")}, ROOT)
    with pytest.raises(ConfigInvalid) as odd:
        load_config({"SYNC_CONFIG": "CANARY-looks-like-a-pasted-token=="}, ROOT)
    assert "CANARY" not in str(odd.value) and "name not shown" in str(odd.value)


# --- 11. encoded echoes of a credential are scrubbed -----------------------------------------------------------

#: A token with every character that changes under JSON escaping, URL encoding and base64's alphabets.
SPECIAL = 'CANARY-"quote"\\slash/plus+space é?&=%-'


def _forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "exact": value,
        "json-escaped": json.dumps(value)[1:-1],
        "json-escaped-unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "url-quote": quote(value, safe=""),
        "url-quote-keep-slash": quote(value),
        "url-quote-plus": quote_plus(value),
        "base64": base64.b64encode(raw).decode(),
        "base64-unpadded": base64.b64encode(raw).decode().rstrip("="),
        "base64-urlsafe": base64.urlsafe_b64encode(raw).decode(),
        "base64-urlsafe-unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "basic-auth": base64.b64encode(b"user:" + raw).decode(),
    }


FORMS = list(_forms(SPECIAL))


@pytest.mark.parametrize("form", FORMS)
def test_the_redactor_scrubs_each_encoded_form(form: str) -> None:
    token = SPECIAL + uuid.uuid4().hex
    echoed = _forms(token)[form]
    redactor = Redactor([SecretValue(token)])
    scrubbed = redactor.scrub(f"the service said: {echoed}; goodbye")
    assert echoed not in scrubbed and "***" in scrubbed
    assert scrubbed.startswith("the service said: ") and scrubbed.endswith("; goodbye")


def test_every_form_is_computed_once_per_value() -> None:
    token = SPECIAL + "x"
    assert {f for f in _forms(token).values() if f != _forms(token)["basic-auth"]} <= encoded_forms(token)
    redactor = Redactor()
    redactor.add([SecretValue(token)])
    redactor.add([SecretValue(token)])  # the second add of the same value does nothing
    assert redactor.scrub("nothing secret here") == "nothing secret here"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("hop", ["validate", "put_secrets"])
def test_a_graph_error_echoing_the_token_in_any_form_reaches_no_response_and_no_log(
    harness: Harness, caplog: pytest.LogCaptureFixture, hop: str, form: str
) -> None:
    target = harness.scenario.add_target("t1")
    token = SPECIAL + uuid.uuid4().hex
    harness.scenario.canary_values.add(token)
    harness.stack.keyvault.set_secret(target.secret_name, token)
    harness.stack.graph.accept_credentials(
        target.service_principal_id, {"BaseAddress": target.base_address, "SecretToken": token}
    )
    harness.configure()
    echoed = _forms(token)[form]
    nested = json.dumps({"code": "InvalidCredentials", "message": f"token {echoed} refused"})
    body = {"error": {"code": f"Bad-{echoed}", "message": nested if hop == "validate" else f"bad value {echoed}"}}
    harness.stack.graph.inject(hop, Fault.status(400, body=body), times=-1)

    result = harness.post({})

    assert result.status == 422, result.text
    assert echoed not in result.text, f"{form} reached the response"
    assert "***" in result.result("t1")["error"]["message"]
    assert echoed not in everything_logged(caplog), f"{form} reached a log record"
