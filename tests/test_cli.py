"""The operator command line (``python -m shared``), run in-process against the stand-ins.

Every run's output goes into the harness transcript, so the conftest canary check covers it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from shared import cli
from shared.cli import check
from standins.server import Fault
from tests.harness import Harness

ROOT = Path(__file__).resolve().parent.parent


def run(harness: Harness, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """``python -m shared <argv> --credential managed-identity``; returns the exit code and stdout."""
    code = cli.main([*argv, "--credential", "managed-identity"])
    captured = capsys.readouterr()
    harness.transcript.append(captured.out + captured.err)
    return code, captured.out


def run_json(harness: Harness, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out = run(harness, capsys, *argv, "--json")
    return code, json.loads(out)


def rows(document: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [row for row in document["checks"] if row["check"] == check]


def two_targets(harness: Harness) -> None:
    harness.scenario.add_target("app-a")
    harness.scenario.add_target("app-b", configured_job_id=False)
    harness.configure()


# --- help and plumbing -------------------------------------------------------------------------------


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes" in out
    for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_RETRYABLE):
        assert f"\n  {code}  " in out
    for command in ("check", "sync", "status"):
        assert cli.main([command, "--help"]) == 0
        assert "exit codes" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE
    assert cli.main(["sync", "--credential", "password"]) == cli.EXIT_USAGE
    capsys.readouterr()


def test_credential_defaults_to_managed_identity_only_inside_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    assert cli.build_parser().parse_args(["check"]).credential == "default"
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi/token")
    assert cli.build_parser().parse_args(["status"]).credential == "managed-identity"
    assert cli.build_parser().parse_args(["sync", "--credential", "default"]).credential == "default"


def test_runs_as_a_module_and_imports_no_azure_sdk() -> None:
    probe = "import sys, shared.cli; print(sorted(m for m in sys.modules if m.startswith(('azure', 'requests'))))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-m", "shared", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0
    assert "exit codes" in helped.stdout


def test_jwt_claims_decodes_the_payload_without_a_signature_check() -> None:
    token = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6WyJTeW5jaHJvbml6YXRpb24uUmVhZFdyaXRlLkFsbCJdfQ.c2ln"
    assert check.jwt_claims(token) == {"roles": ["Synchronization.ReadWrite.All"]}
    assert check.jwt_claims("opaque-token") is None
    assert check.jwt_claims("a.!!!.c") is None


# --- config ------------------------------------------------------------------------------------------------


def test_an_invalid_config_exits_2_naming_every_field(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.set_config(json.dumps({"keyVaults": [], "targets": [{"name": "x"}]}))
    for command in ("check", "sync", "status"):
        code, out = run(harness, capsys, command)
        assert code == cli.EXIT_USAGE
        assert "ConfigInvalid" in out
        assert "keyVaults: required" in out
        assert "targets[0].servicePrincipalId" in out
    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_USAGE
    assert body["error"]["code"] == "ConfigInvalid"
    assert any(p.startswith("keyVaults") for p in body["error"]["problems"])


def test_config_option_reads_a_file(harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    path = tmp_path / "ops-config.json"
    path.write_text(harness.scenario.config_json())
    harness.monkeypatch.setenv("SYNC_CONFIG", "{broken")
    code, body = run_json(harness, capsys, "sync", "--config", str(path))
    assert code == cli.EXIT_OK
    assert body["results"][0]["status"] == "pushed"


# --- check -------------------------------------------------------------------------------------------------


def test_check_fails_while_a_job_holds_old_credentials_and_passes_after_sync(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    two_targets(harness)

    code, out = run(harness, capsys, "check")
    assert code == cli.EXIT_FAILED
    assert "CredentialsRejected" in out
    assert "check failed: 2 problem(s)" in out

    assert run(harness, capsys, "sync")[0] == cli.EXIT_OK

    code, out = run(harness, capsys, "check")
    assert code == cli.EXIT_OK, out
    assert out.rstrip().endswith("check passed")
    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_OK
    assert body["status"] == "passed"
    secrets = [r["subject"] for r in rows(body, "key vault secret")]
    assert secrets == ["standin-kv/app-a-token", "standin-kv/app-b-token"]
    [permission] = rows(body, "graph permission")
    assert permission["ok"] and permission["roles"] == ["Synchronization.ReadWrite.All"]
    jobs = {r["subject"]: r for r in rows(body, "job")}
    setup_b = harness.scenario.targets["app-b"]
    assert jobs["app-b"]["jobId"] == setup_b.job_id  # discovered: the service principal has one job
    assert all(r["ok"] for r in rows(body, "credentials"))
    # validateCredentials was asked about the saved credentials, never sent any
    validate = harness.stack.graph.records("validate")[-2:]
    assert validate and all(r.body["useSavedCredentials"] is True and "credentials" not in r.body for r in validate)


def test_check_needs_the_graph_permission(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    harness.stack.identity.roles = ["User.Read.All"]
    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_FAILED
    [permission] = rows(body, "graph permission")
    assert not permission["ok"]
    assert permission["code"] == "GraphForbidden"
    assert "Synchronization.ReadWrite.All" in permission["message"]
    assert "9b50c33d-700f-43b1-b2eb-87e89b703581" in permission["message"]
    assert "User.Read.All" in permission["message"]


def test_check_warns_about_the_owned_by_permission(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    harness.stack.identity.roles = ["Application.ReadWrite.OwnedBy"]
    _, body = run_json(harness, capsys, "check")
    [permission] = rows(body, "graph permission")
    assert permission["ok"] and "prefer Synchronization.ReadWrite.All" in permission["warning"]


def test_check_names_missing_service_principals_jobs_and_unreadable_secrets(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.scenario.add_target("app-a")
    harness.scenario.add_target("no-job", configured_job_id=False, initial_token=False)
    harness.scenario.add_target("forbidden")
    document = harness.scenario.config_document()
    no_job = harness.scenario.targets["no-job"]
    harness.stack.graph.add_service_principal(no_job.service_principal_id)  # replaced: now without jobs
    ghost = dict(document["targets"][0], name="ghost", servicePrincipalId=str(uuid.uuid4()))
    document["targets"].append(ghost)
    harness.set_config(json.dumps(document))
    harness.stack.keyvault.forbidden_secrets = {"forbidden-token"}

    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_FAILED
    secrets = {r["subject"]: r for r in rows(body, "key vault secret")}
    assert secrets["standin-kv/no-job-token"]["code"] == "KeyVaultSecretNotFound"
    assert secrets["standin-kv/forbidden-token"]["code"] == "KeyVaultForbidden"
    assert "4633458b-17de-408a-b874-0445c86b69e6" in secrets["standin-kv/forbidden-token"]["message"]
    assert secrets["standin-kv/app-a-token"]["ok"]
    [missing_sp] = rows(body, "service principal")
    assert missing_sp["subject"] == "ghost" and missing_sp["code"] == "ServicePrincipalNotFound"
    no_jobs = [r for r in rows(body, "job") if r["subject"] == "no-job"]
    assert no_jobs[0]["code"] == "SyncJobNotFound"


def test_check_warns_about_secrets_expiring_within_30_days(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.scenario.add_target("soon")
    harness.scenario.add_target("later")
    harness.configure()
    now = datetime.now(timezone.utc)
    harness.scenario.rotate("soon-token", expires=now + timedelta(days=10))
    harness.scenario.rotate("later-token", expires=now + timedelta(days=90))
    assert run(harness, capsys, "sync")[0] == cli.EXIT_OK

    code, out = run(harness, capsys, "check")
    assert code == cli.EXIT_OK, out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "standin-kv/soon-token" in warnings[0] and "expires in" in warnings[0]
    assert (now + timedelta(days=10)).strftime("%Y-%m-%d") in warnings[0]

    harness.scenario.rotate("soon-token", expires=now - timedelta(minutes=1))
    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_FAILED
    expired = next(r for r in rows(body, "key vault secret") if r["subject"] == "standin-kv/soon-token")
    assert expired["code"] == "KeyVaultSecretExpired"


def test_check_exits_3_when_a_failure_is_retryable(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    harness.stack.graph.inject("get_job", Fault.status(503, retry_after="0"), times=-1)
    harness.stack.keyvault.forbidden_secrets = {"app-a-token"}  # a permanent failure as well: 3 wins
    code, body = run_json(harness, capsys, "check")
    assert code == cli.EXIT_RETRYABLE
    [job] = rows(body, "job")
    assert job["code"] == "GraphUnavailable" and job["retryable"] is True


# --- sync --------------------------------------------------------------------------------------------------


def test_sync_pushes_the_selected_targets_like_the_http_api(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    two_targets(harness)
    code, out = run(harness, capsys, "sync", "--target", "app-a")
    assert code == cli.EXIT_OK
    assert "sync succeeded" in out and "app-a" in out and "app-b" not in out
    assert harness.scenario.job_token("app-a") == harness.scenario.current_token("app-a-token")
    assert harness.scenario.job_token("app-b") != harness.scenario.current_token("app-b-token")

    code, body = run_json(harness, capsys, "sync", "--secret", "APP-B-TOKEN")
    assert code == cli.EXIT_OK
    assert [r["target"] for r in body["results"]] == ["app-b"]
    assert body["status"] == "succeeded" and body["dryRun"] is False
    assert body["results"][0]["versions"]["SecretToken"] == harness.stack.keyvault.current_version("app-b-token")


def test_sync_dry_run_pushes_nothing(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    code, out = run(harness, capsys, "sync", "--dry-run")
    assert code == cli.EXIT_OK
    assert "dry run" in out and "validated" in out
    assert harness.stack.graph.secret_history(harness.scenario.targets["app-a"].service_principal_id) == []


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--target", "nope"], "UnknownTarget"),
        (["--secret", "nope"], "UnknownSecret"),
        (["--target", "app-a", "--secret", "app-a-token"], "RequestInvalid"),
    ],
)
def test_sync_selection_errors_exit_2_and_run_nothing(
    harness: Harness, capsys: pytest.CaptureFixture[str], argv: list[str], code: str
) -> None:
    harness.scenario.add_target("app-a")
    harness.configure()
    exit_code, body = run_json(harness, capsys, "sync", *argv)
    assert exit_code == cli.EXIT_USAGE
    assert body["error"]["code"] == code
    assert harness.stack.graph.requests == []


def test_sync_exit_codes_mirror_422_and_503(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    harness.scenario.add_target("app-b")
    harness.configure()
    harness.scenario.rotate("app-a-token", accept=False)  # a token the SCIM app does not accept
    code, out = run(harness, capsys, "sync")
    assert code == cli.EXIT_FAILED
    assert "sync partial" in out
    assert "app-a: CredentialsRejected (not retryable)" in out

    harness.stack.graph.inject("put_secrets", Fault.status(503, retry_after="0"), times=-1)
    code, body = run_json(harness, capsys, "sync", "--target", "app-b")
    assert code == cli.EXIT_RETRYABLE
    assert body["results"][0]["error"]["code"] == "GraphUnavailable"


# --- status ------------------------------------------------------------------------------------------------


def test_status_shows_job_state_quarantine_last_run_and_secret_expiry(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    harness.scenario.add_target("app-a")
    harness.scenario.add_target(
        "stuck", job_status="Quarantine", quarantine_reason="EncounteredQuarantineException", configured_job_id=False
    )
    harness.configure()
    expires = datetime.now(timezone.utc) + timedelta(days=12)
    harness.scenario.rotate("stuck-token", expires=expires)

    code, out = run(harness, capsys, "status")
    assert code == cli.EXIT_OK, out
    stuck_line = next(line for line in out.splitlines() if line.startswith("stuck"))
    assert "Quarantine" in stuck_line and "EncounteredQuarantineException" in stuck_line
    assert expires.strftime("%Y-%m-%d") in stuck_line and "in 1" in stuck_line
    assert "never" in next(line for line in out.splitlines() if line.startswith("app-a"))

    code, body = run_json(harness, capsys, "status")
    assert code == cli.EXIT_OK
    by_name = {t["target"]: t for t in body["targets"]}
    stuck = by_name["stuck"]
    assert stuck["jobId"] == harness.scenario.targets["stuck"].job_id
    assert stuck["jobStatus"] == "Quarantine"
    assert stuck["quarantineReason"] == "EncounteredQuarantineException"
    assert stuck["lastSuccessfulRun"]
    [secret] = stuck["secrets"]
    assert secret["key"] == "SecretToken" and secret["secret"] == "stuck-token"
    assert secret["version"] == harness.stack.keyvault.current_version("stuck-token")
    assert datetime.fromisoformat(secret["expiresOn"]) == expires.replace(microsecond=0)
    assert 11 < secret["expiresInDays"] <= 12
    assert by_name["app-a"]["jobStatus"] == "Active"
    # status reads and reports; it never validates or pushes
    assert harness.stack.graph.hop_count("validate") == 0
    assert harness.stack.graph.hop_count("put_secrets") == 0


def test_status_reports_what_it_cannot_read(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    harness.scenario.add_target("app-a")
    document = harness.scenario.config_document()
    document["targets"].append(dict(document["targets"][0], name="ghost", servicePrincipalId=str(uuid.uuid4())))
    harness.set_config(json.dumps(document))
    code, out = run(harness, capsys, "status")
    assert code == cli.EXIT_FAILED
    assert "ghost: ServicePrincipalNotFound" in out
    harness.stack.keyvault.inject("secret", Fault.status(503, retry_after="0"), times=-1)
    code, body = run_json(harness, capsys, "status")
    assert code == cli.EXIT_RETRYABLE
    assert body["targets"][0]["secrets"][0]["error"]["code"] == "KeyVaultUnavailable"


def test_secret_values_are_never_printed(harness: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    two_targets(harness)
    outputs = []
    for argv in (["check"], ["sync"], ["status"], ["check", "--json"], ["sync", "--json"], ["status", "--json"]):
        outputs.append(run(harness, capsys, *argv)[1])
    everything = "\n".join(outputs)
    assert not [value for value in harness.scenario.canary_values if value in everything]


def test_the_default_credential_works_through_default_azure_credential(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--credential default`` is DefaultAzureCredential; here its chain reaches the managed-identity stand-in."""
    harness.scenario.add_target("app-a")
    harness.configure()
    code = cli.main(["sync", "--credential", "default"])
    captured = capsys.readouterr()
    harness.transcript.append(captured.out + captured.err)
    assert code == cli.EXIT_OK, captured.out
    assert harness.scenario.job_token("app-a") == harness.scenario.current_token("app-a-token")


class _StubCredential:
    description = "Azure credential (DefaultAzureCredential)"

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str) -> Any:
        return type("AccessToken", (), {"token": self.token})()


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJub25lIn0.{payload}.c2ln"


@pytest.mark.parametrize(
    ("token", "ok", "warned"),
    [
        (_jwt({"roles": ["Synchronization.ReadWrite.All"]}), True, False),
        (_jwt({"scp": "Directory.AccessAsUser.All User.Read", "idtyp": "user"}), True, True),
        (_jwt({"scp": "User.Read"}), False, False),
        (_jwt({"roles": []}), False, False),
        ("not-a-jwt", True, True),
    ],
)
def test_the_permission_check_reads_roles_or_a_users_scopes(token: str, ok: bool, warned: bool) -> None:
    from shared.core.config import parse_config

    config = parse_config(
        json.dumps(
            {
                "keyVaults": [{"name": "contoso-kv"}],
                "targets": [
                    {
                        "name": "t",
                        "servicePrincipalId": str(uuid.uuid4()),
                        "secrets": {"SecretToken": {"keyVaultSecret": "s"}},
                    }
                ],
            }
        )
    )
    services = type("Services", (), {"credential": _StubCredential(token)})()
    row = check._check_permission(config, services)  # type: ignore[arg-type]
    assert row.ok is ok
    assert bool(row.warning) is warned
    if not ok:
        assert row.code == "GraphForbidden"
