"""Issue #11, points 12-16: the CLI and the sandbox as a newcomer meets them.

Real processes throughout: dev.py, the CLI (``python -m shared``) and the sandbox run as subprocesses, the
way a person runs them from a shell, with an environment built from scratch (no Azure sign-in, no Azure CLI
or a stand-in ``az`` that is signed out).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SIGN_IN = "sign in with `az login` (or run inside Azure"
#: What a newcomer's shell has (no app settings, no Azure sign-in); HOME is replaced per test.
_KEEP = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _KEEP}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def cli(*argv: str, env: dict[str, str], python: tuple[str, ...] = (sys.executable,)) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*python, "-m", "shared", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A valid document whose vault and Graph are unreachable: only the sign-in is ever attempted."""
    document = {
        "keyVaults": [{"name": "contoso-kv", "url": "https://127.0.0.1:9"}],
        "graph": {"endpoint": "https://127.0.0.1:9"},
        "targets": [
            {
                "name": "contoso-scim",
                "servicePrincipalId": "5f0e1c1e-7c7a-4c0e-9f3b-2a1d8c2f9e11",
                "secrets": {
                    "BaseAddress": {"value": "https://scim.contoso.example/v2"},
                    "SecretToken": {"keyVaultSecret": "contoso-scim-token"},
                },
            }
        ],
    }
    path = tmp_path / "sync-config.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# --- 12. one documented way that works on a fresh clone -------------------------------------------------------


def _dev_would_rebuild_the_venv() -> str | None:
    """Why running dev.py here would (re)build .venv or install into it, if it would: the test then skips."""
    sys.path.insert(0, str(ROOT))
    try:
        import dev
    finally:
        sys.path.pop(0)
    marker = dev.VENV / ".interpreter.json"
    target = dev.find_target_python()
    if target is None or not marker.exists():
        return "no Python 3.13, or .venv was not built by dev.py"
    if json.loads(marker.read_text()) != {"path": target.path, "version": list(target.version)}:
        return ".venv was built with another interpreter"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in dev.REQUIREMENTS)).hexdigest()
    stamp = dev.VENV / ".requirements.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        return "the requirements changed since .venv was built"
    return None


def test_dev_py_cli_runs_the_operator_cli_on_the_projects_python(tmp_path: Path) -> None:
    reason = _dev_would_rebuild_the_venv()
    if reason:
        pytest.skip(f"running dev.py would change .venv ({reason})")
    env = clean_env(tmp_path)
    shown = subprocess.run(
        [sys.executable, "dev.py", "cli", "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert shown.returncode == 0, shown.stderr
    assert "exit codes" in shown.stdout and "{check,sync,status}" in shown.stdout
    missing = subprocess.run(
        [sys.executable, "dev.py", "cli", "check", "--config", str(tmp_path / "nope.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "ConfigInvalid" in missing.stdout and "ModuleNotFoundError" not in missing.stderr


def test_a_python_without_the_dependencies_says_how_to_run_the_cli(tmp_path: Path, config_file: Path) -> None:
    # -S: no site-packages, as the system Python of a fresh clone (was: ModuleNotFoundError: No module named 'azure')
    ran = cli("check", "--config", str(config_file), env=clean_env(tmp_path), python=(sys.executable, "-S"))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "python3 dev.py cli check" in ran.stdout
    assert "Traceback" not in ran.stderr and "ModuleNotFoundError" not in ran.stderr


def test_the_readme_gives_dev_py_cli_as_the_way_to_run_the_cli() -> None:
    section = README.split("## Operator command line", 1)[1].split("\n## ", 1)[0]
    assert section.startswith(": `python3 dev.py cli`")
    for command in ("python3 dev.py cli check", "python3 dev.py cli sync", "python3 dev.py cli status"):
        assert command in section
    assert "python -m shared check" not in README.replace("`python -m shared check / sync / status`", "")


# --- 13. not signed in: said once, with what to do ----------------------------------------------------------------


def _fake_az(tmp_path: Path, stderr: str) -> Path:
    """An ``az`` on PATH that answers like the Azure CLI does in that state (no network, no account)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "az"
    script.write_text(f"#!/bin/sh\necho {shlex.quote(stderr)} >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


@pytest.mark.parametrize("az", ["not-installed", "signed-out"])
def test_without_a_sign_in_the_cli_says_az_login_once(tmp_path: Path, config_file: Path, az: str) -> None:
    env = clean_env(tmp_path)
    if az == "signed-out":
        signed_out = _fake_az(tmp_path, "ERROR: Please run 'az login' to setup account.")
        env["PATH"] = f"{signed_out}{os.pathsep}{env['PATH']}"
    else:
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "az").exists())

    ran = cli("check", "--config", str(config_file), "--credential", "default", env=env)

    everything = ran.stdout + ran.stderr
    assert ran.returncode == 1, everything
    assert everything.count(SIGN_IN) == 1, everything
    assert "SignInRequired" in ran.stdout
    # was: azure-identity's 13-line report, twice, and advice about managedIdentityClientId
    assert "Attempted credentials" not in everything and "failed to retrieve a token" not in everything
    assert "managedIdentityClientId" not in everything


def test_an_expired_az_login_says_sign_in_again(tmp_path: Path, config_file: Path) -> None:
    env = clean_env(tmp_path)
    expired = "ERROR: AADSTS700082: The refresh token has expired due to inactivity."
    env["PATH"] = f"{_fake_az(tmp_path, expired)}{os.pathsep}{env['PATH']}"
    ran = cli("sync", "--config", str(config_file), "--credential", "default", "--json", env=env)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    error = json.loads(ran.stdout)["error"]
    assert error["code"] == "SignInRequired"
    assert "AADSTS700082" in error["message"] and "az login" in error["message"]
    assert "Attempted credentials" not in ran.stderr


# --- 14 and 15. the sandbox: --serve for the CLI; every call labelled -----------------------------------------------


class Sandbox:
    """``python -m standins.sandbox --serve`` in a child process, its output read line by line."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "standins.sandbox", "--serve"],
            cwd=ROOT, env=clean_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.drained = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, marker: str, timeout: float = 60) -> list[str]:
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"the sandbox ended before {marker!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if marker in line:
                return self.seen

    def exports(self) -> dict[str, str]:
        exported = {}
        for line in self.seen:
            if line.startswith("export "):
                name, _, value = line[len("export ") :].partition("=")
                exported[name] = shlex.split(value)[0]
        return exported

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; the rest of its output is read. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        if not self.drained:
            while (line := self.lines.get(timeout=10)) is not None:
                self.seen.append(line)
            self.drained = True
        return code


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    running = Sandbox(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_the_sandbox_serves_the_cli_until_stopped(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.until("Ctrl-C stops the stand-ins")
    exported = sandbox.exports()
    assert set(exported) == {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "SYNC_CONFIG"}
    assert "python3 dev.py cli check --credential managed-identity" in "\n".join(sandbox.seen)
    env = clean_env(tmp_path, **exported)

    def run(*argv: str) -> subprocess.CompletedProcess:
        return cli(*argv, "--credential", "managed-identity", env=env)

    before = run("check")
    assert before.returncode == 1, before.stdout + before.stderr  # the jobs still hold the old token
    assert re.search(r"credentials\s+contoso-scim\s+FAILED", before.stdout)
    synced = run("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "contoso-scim" in synced.stdout and "job started" in synced.stdout
    after = run("check")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "check passed" in after.stdout
    status = run("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr

    assert sandbox.stop() == 0
    output = "\n".join(sandbox.seen)
    assert "sandbox stopped" in output
    assert re.search(r"keyvault .* -> 401 .*Key Vault's challenge", output), output
    assert "token request for Key Vault" in output and "token request for Microsoft Graph" in output
    assert not Path(exported["SYNC_CONFIG"]).exists(), "the sandbox cleans up after itself"
    for text in (output, before.stdout, synced.stdout, after.stdout, status.stdout):
        assert "CANARY-" not in text, "a planted secret value was printed"


def test_the_sandbox_run_labels_the_challenge_and_each_token_request(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "standins.sandbox"], cwd=ROOT, env=clean_env(tmp_path),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    calls = [line for line in ran.stdout.splitlines() if line.startswith("   ") and "->" in line]
    challenge = [line for line in calls if "-> 401" in line]
    assert challenge and all("Key Vault's challenge" in line for line in challenge)
    tokens = [line for line in calls if "/msi/token" in line]
    assert sorted(t.split("token request for ")[1].split(" (")[0] for t in tokens) == ["Key Vault", "Microsoft Graph"]
    assert "CANARY-" not in ran.stdout + ran.stderr


# --- 15 and 16. the README defines what it uses, and points the right way -------------------------------------------


@pytest.mark.parametrize(
    ("term", "definition"),
    [
        ("SCIM", "System for\nCross-domain Identity Management"),
        ("quarantine", "*quarantine* when it keeps failing"),
        ("challenge", "Key Vault answers a first request that carries no token with a 401"),
        ("BaseAddress", "`BaseAddress`, the app's SCIM endpoint"),
        ("KEY_VAULT_EVENT_SECRETS", "`KEY_VAULT_EVENT_SECRETS`, the `azd` environment setting"),
    ],
)
def test_the_readme_defines_each_term_where_it_first_uses_it(term: str, definition: str) -> None:
    assert definition in README, f"{term} is not defined"
    first_use = README.index(term)
    defined_at = README.index(definition)
    assert defined_at - first_use < 400, f"{term} is used long before it is defined"


def test_the_troubleshooting_section_points_up_to_the_cli_section() -> None:
    assert "see below" not in README.lower()
    troubleshooting = README.index("## Troubleshooting")
    link = README.index("](#operator-command-line-python3-devpy-cli)", troubleshooting)
    assert README.index("## Operator command line: `python3 dev.py cli`") < troubleshooting < link


def test_nothing_in_the_repository_cites_a_file_it_does_not_have() -> None:
    cited = []
    for folder in ("shared", "standins", "function_app.py", "dev.py"):
        path = ROOT / folder
        for file in [path] if path.is_file() else path.rglob("*.py"):
            if "graph-sync-api.md" in file.read_text(encoding="utf-8"):
                cited.append(str(file.relative_to(ROOT)))
    assert not cited, f"these cite graph-sync-api.md, which is not in the repository: {cited}"
