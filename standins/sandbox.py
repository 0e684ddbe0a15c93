"""Local sandbox: a full rotation on the loopback stand-ins, through the function app's own handlers.

    python3 dev.py sandbox

A provisioning job sits in quarantine because its SCIM token expired. A new token version lands
in the stand-in Key Vault, the Key Vault event fires the Event Grid trigger, the credentials are
validated and pushed, and the job resumes. Each step is printed; secret values never are.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from datetime import datetime, timezone
from typing import Any

from .scenario import Scenario
from .server import RequestRecord
from .stack import StandinStack


class _HostContext:
    """What the Functions host hands a function as ``context``: here only the invocation id is read."""

    def __init__(self) -> None:
        self.invocation_id = str(uuid.uuid4())


def _say(step: str, text: str = "") -> None:
    print(f"\n== {step}" + (f"\n   {text}" if text else ""), flush=True)


def _requests_since(stack: StandinStack, marks: dict[str, int]) -> list[tuple[str, RequestRecord]]:
    rows = []
    for name, server in (("identity", stack.identity), ("keyvault", stack.keyvault), ("graph", stack.graph)):
        rows.extend((name, r) for r in server.requests[marks.get(name, 0) :])
    return sorted(rows, key=lambda row: row[1].time)


def _marks(stack: StandinStack) -> dict[str, int]:
    return {"identity": len(stack.identity.requests), "keyvault": len(stack.keyvault.requests),
            "graph": len(stack.graph.requests)}  # fmt: skip


def _print_calls(stack: StandinStack, marks: dict[str, int], aliases: dict[str, str]) -> None:
    for service, record in _requests_since(stack, marks):
        path = record.path
        for value, alias in aliases.items():
            path = path.replace(value, alias)
        print(f"   {service:9} {record.method:5} {path}  -> {record.status or record.fault}")


def run() -> int:
    logging.basicConfig(level=logging.WARNING, format="   log %(levelname)s %(message)s")
    with StandinStack() as stack:
        import azure.functions as func

        scenario = Scenario(stack)
        contoso = scenario.add_target(
            "contoso-scim", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException",
            stored_extra={"SyncNotificationSettings": '{"Enabled":false}'},
        )  # fmt: skip
        scenario.add_target("fabrikam-scim")
        os.environ.update(scenario.environ())
        os.environ.setdefault("SYNC_RETRY_BACKOFF_SECONDS", "0.05")

        import function_app

        functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
        graph = stack.graph
        sp, job = contoso.service_principal_id, contoso.job_id
        aliases = {}
        for setup in scenario.targets.values():
            aliases[setup.job_id] = "{" + setup.name + " job}"
            aliases[setup.service_principal_id] = "{" + setup.name + " sp}"

        _say(
            "Stand-ins up", f"managed identity {stack.identity.url}, Key Vault {stack.keyvault.url}, Graph {graph.url}"
        )
        config = scenario.config_document()
        shown = {k: v for k, v in config.items() if k != "targets"}
        _say("SYNC_CONFIG", json.dumps(shown) + f" + {len(config['targets'])} targets: "
             + ", ".join(t["name"] for t in config["targets"]))  # fmt: skip
        _say("Before", f"job {job} of contoso-scim is {graph.job_status(sp, job)} "
             f"({graph.quarantine_reason(sp, job)}); its stored token is the old one")  # fmt: skip

        version = scenario.rotate(contoso.secret_name)
        _say("Rotation", f"new version {version} of Key Vault secret '{contoso.secret_name}' "
             "(the SCIM app accepts the new token from now on)")  # fmt: skip

        event = func.EventGridEvent(
            id=str(uuid.uuid4()),
            data={"Id": f"{stack.keyvault.url}/secrets/{contoso.secret_name}/{version}", "VaultName": "standin-kv",
                  "ObjectType": "Secret", "ObjectName": contoso.secret_name, "Version": version},
            topic="/subscriptions/0000/resourceGroups/sandbox/providers/Microsoft.KeyVault/vaults/standin-kv",
            subject=contoso.secret_name,
            event_type="Microsoft.KeyVault.SecretNewVersionCreated",
            event_time=datetime.now(timezone.utc),
            data_version="1",
        )  # fmt: skip
        marks = _marks(stack)
        _say("Key Vault event", "Microsoft.KeyVault.SecretNewVersionCreated -> Event Grid trigger 'keyvault_events'")
        functions["keyvault_events"](event, _HostContext())
        _print_calls(stack, marks, aliases)

        stored = graph.stored_secrets(sp)
        current = scenario.current_token(contoso.secret_name)
        holds_current = stored.get("SecretToken") == current
        ok = holds_current and graph.job_status(sp, job) == "Active"
        _say("After", f"job holds the current Key Vault version: {'yes' if holds_current else 'NO'}"
             f"; unmanaged key SyncNotificationSettings carried along: "
             f"{'yes' if 'SyncNotificationSettings' in stored else 'NO'}; job status {graph.job_status(sp, job)}; "
             f"start calls {graph.start_calls(sp, job)}")  # fmt: skip

        marks = _marks(stack)
        request = func.HttpRequest("POST", "https://localhost/api/sync", headers={}, params={}, route_params={},
                                   body=json.dumps({"dryRun": True}).encode())  # fmt: skip
        response = functions["sync"](request, _HostContext())
        body: dict[str, Any] = json.loads(response.get_body())
        _say("Dry run over HTTP", f"POST /api/sync {{\"dryRun\": true}} -> {response.status_code} {body['status']}: "
             + ", ".join(f"{r['target']}={r['status']}" for r in body["results"]))  # fmt: skip
        _print_calls(stack, marks, aliases)
        print("   (warm invocation: no token request and no Key Vault challenge)")

        _say("Result", "rotation complete" if ok else "rotation FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run())
