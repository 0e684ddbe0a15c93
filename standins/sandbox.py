"""Local sandbox on the loopback stand-ins, through the function app's own handlers and the operator CLI.

    python3 dev.py sandbox           # a full rotation, step by step
    python3 dev.py sandbox --serve   # keep the stand-ins running; point the CLI at them

The rotation: a provisioning job sits in quarantine because its SCIM token expired. A new token
version lands in the stand-in Key Vault, the Key Vault event fires the Event Grid trigger, the
credentials are validated and pushed, and the job resumes. Each call is printed with what it is
(the Key Vault challenge, which token a token request is for); secret values never are.

``--serve`` seeds the same estate, writes its ``SYNC_CONFIG`` to a file, prints the ``export`` lines
that point ``python3 dev.py cli check|sync|status --credential managed-identity`` at the stand-ins, and
prints each call they receive until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
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


#: What each Graph hop is, for a reader who has not read the code.
_GRAPH_HOPS = {
    "list_jobs": "find the provisioning job",
    "get_job": "read the job's status",
    "validate": "validateCredentials: Graph asks the target application whether the credentials work",
    "get_secrets": "read the stored keys (those the config does not manage are carried along)",
    "put_secrets": "write the credentials",
    "start": "start the job again (it was in quarantine)",
}
_TOKEN_RESOURCES = (("vault", "Key Vault"), ("graph", "Microsoft Graph"), ("storage", "Azure Storage"))


def describe(service: str, record: RequestRecord) -> str:
    """A short label saying what a call is: the challenge, which resource a token is for, which Graph step."""
    if service == "identity" and record.hop == "token":
        resource = record.query.get("resource", "")
        name = next((label for marker, label in _TOKEN_RESOURCES if marker in resource.lower()), "a resource")
        return f"token request for {name} (resource {resource})"
    if service == "keyvault" and record.status == 401:
        return "Key Vault's challenge: the first request carries no token; the SDK gets one and sends it again"
    if service == "keyvault" and record.hop == "secret":
        return "read the secret's current version"
    if service == "graph":
        return _GRAPH_HOPS.get(record.hop, "")
    return ""


def _format_call(service: str, record: RequestRecord, aliases: dict[str, str]) -> str:
    path = record.path
    for value, alias in aliases.items():
        path = path.replace(value, alias)
    label = describe(service, record)
    return f"   {service:9} {record.method:5} {path}  -> {record.status or record.fault}" + (
        f"  -- {label}" if label else ""
    )


def _print_calls(stack: StandinStack, marks: dict[str, int], aliases: dict[str, str]) -> None:
    for service, record in _requests_since(stack, marks):
        print(_format_call(service, record, aliases))


def _aliases(scenario: Scenario) -> dict[str, str]:
    aliases = {}
    for setup in scenario.targets.values():
        aliases[setup.job_id] = "{" + setup.name + " job}"
        aliases[setup.service_principal_id] = "{" + setup.name + " sp}"
    return aliases


def _seed(stack: StandinStack) -> tuple[Scenario, Any]:
    """The estate both modes use: contoso-scim quarantined with an expired token, fabrikam-scim healthy."""
    scenario = Scenario(stack)
    contoso = scenario.add_target(
        "contoso-scim", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException",
        stored_extra={"SyncNotificationSettings": '{"Enabled":false}'},
    )  # fmt: skip
    scenario.add_target("fabrikam-scim")
    return scenario, contoso


def run() -> int:
    logging.basicConfig(level=logging.WARNING, format="   log %(levelname)s %(message)s")
    with StandinStack() as stack:
        import azure.functions as func

        scenario, contoso = _seed(stack)
        os.environ.update(scenario.environ())
        os.environ.setdefault("SYNC_RETRY_BACKOFF_SECONDS", "0.05")

        import function_app

        functions = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
        graph = stack.graph
        sp, job = contoso.service_principal_id, contoso.job_id
        aliases = _aliases(scenario)

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


class _Watcher(threading.Thread):
    """Prints every call the stand-ins receive, labelled, while ``--serve`` runs."""

    def __init__(self, stack: StandinStack, aliases: dict[str, str], stop: threading.Event) -> None:
        super().__init__(name="sandbox-watcher", daemon=True)
        self.stack, self.aliases, self.stop = stack, aliases, stop
        self.marks = _marks(stack)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.flush()

    def flush(self) -> None:
        calls = _requests_since(self.stack, self.marks)
        self.marks = _marks(self.stack)
        for service, record in calls:
            print(_format_call(service, record, self.aliases), flush=True)


def serve(config_out: str | None = None, env_file: str | None = None) -> int:
    """Keep the stand-ins up with a seeded estate until Ctrl-C (or SIGTERM); say how to point the CLI at them."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    workdir = Path(tempfile.mkdtemp(prefix="sync-sandbox-"))
    try:
        with StandinStack() as stack:
            scenario, contoso = _seed(stack)
            config = Path(config_out).resolve() if config_out else workdir / "sync-config.json"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(json.dumps(scenario.config_document(), indent=2) + "\n", encoding="utf-8")
            settings = {**stack.environ(), "SYNC_CONFIG": str(config)}
            if env_file:
                Path(env_file).write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
            print("Stand-ins for managed identity, Key Vault and Microsoft Graph are running, with two provisioning")
            print("jobs, contoso-scim and fabrikam-scim. Both still hold an old token while Key Vault holds the")
            print("current one, and contoso-scim's job is in quarantine. In another shell, from this repository:\n")
            for name, value in settings.items():
                print(f"export {name}={shlex.quote(value)}")
            print("\npython3 dev.py cli check --credential managed-identity    # the jobs' saved tokens fail")
            print("python3 dev.py cli sync --credential managed-identity     # pushes Key Vault's version, resumes it")
            print("python3 dev.py cli status --credential managed-identity")
            print(f"\nSYNC_CONFIG is {config} (edit it, or rotate: press Enter here for a new token version of")
            print(f"'{contoso.secret_name}'). Ctrl-C stops the stand-ins. Calls they receive:", flush=True)
            watcher = _Watcher(stack, _aliases(scenario), stop)
            watcher.start()
            if sys.stdin is not None and sys.stdin.isatty():
                threading.Thread(
                    target=_rotate_on_enter, args=(scenario, contoso.secret_name, stop), daemon=True
                ).start()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            stop.set()
            watcher.join(timeout=2)
            watcher.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("sandbox stopped", flush=True)
    return 0


def _rotate_on_enter(scenario: Scenario, secret_name: str, stop: threading.Event) -> None:
    for _ in sys.stdin:
        if stop.is_set():
            return
        version = scenario.rotate(secret_name)
        print(f"   new version {version} of Key Vault secret '{secret_name}' (the SCIM app accepts it)", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 dev.py sandbox",
        description="Provisioning Secret Sync on local stand-ins (nothing leaves 127.0.0.1).",
    )
    parser.add_argument(
        "--serve", action="store_true", help="keep the stand-ins running and print what to export for the CLI"
    )
    parser.add_argument("--config-out", metavar="PATH", help="with --serve: where to write SYNC_CONFIG")
    parser.add_argument("--env-file", metavar="PATH", help="with --serve: also write the settings as KEY=VALUE lines")
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.config_out, args.env_file)
    return run()


if __name__ == "__main__":
    sys.exit(main())
