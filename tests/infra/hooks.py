"""Running the hook scripts for real against the fake ``az`` (tests/infra/fake_az.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAKE = Path(__file__).with_name("fake_az.py")


def ok(stdout: str = "") -> dict[str, Any]:
    return {"stdout": stdout, "exit": 0}


def fail(stderr: str = "ERROR: failed", code: int = 1) -> dict[str, Any]:
    return {"stderr": stderr, "exit": code}


NOT_FOUND = fail('ERROR: Not Found({"error":{"code":"Request_ResourceNotFound","message":"Resource does not exist"}})')


@dataclass
class Call:
    command: str
    options: dict[str, Any]

    def __getitem__(self, option: str) -> Any:
        return self.options[option]

    def get(self, option: str, default: Any = None) -> Any:
        return self.options.get(option, default)

    @property
    def parameters(self) -> dict[str, str]:
        """``--parameters k=v ...`` by name (a value without ``=`` is kept whole, so a split value shows)."""
        result: dict[str, str] = {}
        for item in self.options.get("--parameters", []):
            name, sep, value = item.partition("=")
            result[name if sep else f"<no name: {item}>"] = value
        return result


@dataclass
class FakeCli:
    """One fake Azure CLI: rules in, calls out. ``run`` executes a hook script with it first on PATH."""

    workdir: Path
    rules: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bin = self.workdir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / "calls.jsonl"
        shims = {
            "az": f'#!/bin/sh\nexec "{sys.executable}" -I -S "{FAKE}" az "$@"\n',
            # sleep is only recorded (in the fake's log format), so wait loops take no time
            "sleep": '#!/bin/sh\nprintf \'{"command": "sleep", "options": {"seconds": ["%s"]}}\\n\' "$*" >> '
            f'"{self.log}"\n',
        }
        for tool, text in shims.items():
            shim = self.bin / tool
            shim.write_text(text, encoding="utf-8")
            shim.chmod(0o755)
        self.scenario = self.workdir / "scenario.json"

    def on(self, command: str, *responses: dict[str, Any], **match: Any) -> FakeCli:
        """Answer ``command`` (when its options equal ``match``; a key ending in ``_re`` is a regex)."""
        options = {}
        for key, value in match.items():
            regex = key.endswith("_re")
            name = "--" + key.removesuffix("_re").replace("_", "-")
            options[name + ("~" if regex else "")] = value
        self.rules.append({"command": command, "match": options, "responses": list(responses) or [ok()]})
        return self

    def run(
        self, root: Path, script: str, env: dict[str, str], *args: str, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        """Run ``root/infra/scripts/<script>`` with ``sh`` (as azd does) in a clean environment plus ``env``."""
        for stale in self.workdir.glob("calls.jsonl*"):
            stale.unlink()
        self.scenario.write_text(json.dumps({"log": str(self.log), "rules": self.rules}), encoding="utf-8")
        full_env = {
            "PATH": f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin",
            "HOME": str(self.workdir),
            "LC_ALL": "C",
            "FAKE_AZ_SCENARIO": str(self.scenario),
            **env,
        }
        return subprocess.run(
            ["sh", str(root / "infra" / "scripts" / script), *args],
            cwd=self.workdir,  # not the project root: the scripts find it from $0
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def calls(self, command: str | None = None) -> list[Call]:
        if not self.log.exists():
            return []
        calls = [Call(**json.loads(line)) for line in self.log.read_text(encoding="utf-8").splitlines()]
        return [c for c in calls if command is None or c.command == command]

    @property
    def sleeps(self) -> list[list[str]]:
        return [c.options["seconds"] for c in self.calls("sleep")]

    @property
    def refused(self) -> list[Call]:
        return self.calls("REFUSED")
