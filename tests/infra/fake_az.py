"""A stand-in for the Azure CLI (``az``) and for ``sleep``, for running the hook scripts for real.

Put on PATH by ``FakeCli`` (tests/infra/hooks.py). Each call is parsed the way the Azure CLI's argparse would:
the command words, then each option by name with its value(s), aliases folded into the long name (``-g`` is
``--resource-group``). An option the real command does not have, a missing value, a value given twice, a
stray positional argument or a missing required option is refused with exit code 2, as ``az`` refuses it.
Accepted calls are appended to a JSON-lines log (command, options) and answered from the scenario's rules:
the first rule whose command and option values match gives the next of its responses (the last repeats).

``sleep`` is recorded and returns at once, so wait loops run in milliseconds and their pauses can be counted.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

GLOBAL = {"--subscription": 1, "--query": 1, "--output": 1, "--only-show-errors": 0, "--debug": 0, "--verbose": 0}
ALIASES = {
    "-o": "--output",
    "-g": "--resource-group",
    "-n": "--name",
    "-f": "--template-file",
    "-p": "--parameters",
    "-y": "--yes",
    "-m": "--method",
    "-u": "--url",
    "--uri": "--url",
    "-b": "--body",
    "-s": "--subscription",
}

# The options each command has (value count: 0 flag, 1 single, "+" one or more) and which are required.
COMMANDS: dict[str, tuple[dict[str, int | str], set[str]]] = {
    "account show": ({"--name": 1}, set()),
    "resource show": (
        {
            "--ids": "+",
            "--name": 1,
            "--resource-group": 1,
            "--resource-type": 1,
            "--namespace": 1,
            "--parent": 1,
            "--api-version": 1,
            "--include-response-body": 1,
        },
        set(),
    ),
    "rest": (
        {
            "--method": 1,
            "--url": 1,
            "--resource": 1,
            "--headers": "+",
            "--body": 1,
            "--uri-parameters": "+",
            "--skip-authorization-header": 0,
            "--output-file": 1,
        },
        {"--url"},
    ),
    "deployment group create": (
        {
            "--resource-group": 1,
            "--name": 1,
            "--template-file": 1,
            "--template-uri": 1,
            "--parameters": "+",
            "--mode": 1,
            "--no-wait": 0,
            "--what-if": 0,
            "--confirm-with-what-if": 0,
        },
        {"--resource-group"},
    ),
    "eventgrid system-topic list": ({"--resource-group": 1, "--odata-query": 1}, set()),
    "eventgrid system-topic show": ({"--name": 1, "--resource-group": 1, "--ids": "+"}, set()),
    "eventgrid system-topic delete": ({"--name": 1, "--resource-group": 1, "--ids": "+", "--yes": 0}, set()),
    "eventgrid system-topic event-subscription show": (
        {"--name": 1, "--system-topic-name": 1, "--resource-group": 1, "--include-full-endpoint-url": 0},
        {"--name", "--system-topic-name", "--resource-group"},
    ),
    "eventgrid system-topic event-subscription list": (
        {"--system-topic-name": 1, "--resource-group": 1, "--odata-query": 1},
        {"--system-topic-name", "--resource-group"},
    ),
    "eventgrid system-topic event-subscription delete": (
        {"--name": 1, "--system-topic-name": 1, "--resource-group": 1, "--yes": 0},
        {"--name", "--system-topic-name", "--resource-group"},
    ),
    "role assignment delete": (
        {"--ids": "+", "--assignee": 1, "--role": 1, "--scope": 1, "--resource-group": 1, "--yes": 0},
        set(),
    ),
}


class Refused(Exception):
    pass


def parse(argv: list[str]) -> tuple[str, dict[str, object]]:
    words: list[str] = []
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        words.append(rest.pop(0))
    command = " ".join(words)
    if command not in COMMANDS:
        raise Refused(f"'{command}' is not an az command this fake knows")
    spec, required = COMMANDS[command]
    known = {**GLOBAL, **spec}
    options: dict[str, object] = {}
    while rest:
        token = rest.pop(0)
        if not token.startswith("-"):
            raise Refused(f"unrecognized arguments: {token}")
        name, inline, value = token, None, None
        if token.startswith("--") and "=" in token:
            name, inline = token.split("=", 1)
        name = ALIASES.get(name, name)
        if name not in known:
            raise Refused(f"unrecognized arguments: {token}")
        if name in options:
            raise Refused(f"{name} given twice")
        count = known[name]
        if count == 0:
            if inline is not None:
                raise Refused(f"{name} takes no value")
            options[name] = True
            continue
        values = [inline] if inline is not None else []
        while rest and not (rest[0].startswith("-") and len(rest[0]) > 1 and not rest[0][1].isdigit()):
            values.append(rest.pop(0))
            if count == 1:
                break
        if not values:
            raise Refused(f"argument {name}: expected {'one or more arguments' if count == '+' else 'one argument'}")
        value = values if count == "+" else values[0]
        options[name] = value
    missing = required - set(options)
    if missing:
        raise Refused(f"the following arguments are required: {', '.join(sorted(missing))}")
    return command, options


def matches(rule: dict, command: str, options: dict[str, object]) -> bool:
    if rule["command"] != command:
        return False
    for key, expected in rule.get("match", {}).items():
        if key.endswith("~"):
            actual = options.get(key[:-1])
            if not isinstance(actual, str) or not re.search(expected, actual):
                return False
        elif options.get(key) != expected:
            return False
    return True


def main(argv: list[str]) -> int:
    scenario_path = Path(os.environ["FAKE_AZ_SCENARIO"])
    scenario = json.loads(scenario_path.read_text(encoding="utf-8"))
    log = Path(scenario["log"])
    tool, args = argv[1], argv[2:]  # the shims call: fake_az.py az|sleep ARGS...
    if tool == "sleep":
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"command": "sleep", "options": {"seconds": args}}) + "\n")
        return 0
    try:
        command, options = parse(args)
    except Refused as refused:
        print(f"ERROR: {refused}", file=sys.stderr)
        with log.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"command": "REFUSED", "options": {"argv": args, "why": str(refused)}}) + "\n")
        return 2
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"command": command, "options": options}) + "\n")
    for index, rule in enumerate(scenario["rules"]):
        if matches(rule, command, options):
            counter = log.with_name(f"{log.name}.rule{index}")
            used = int(counter.read_text()) if counter.exists() else 0
            counter.write_text(str(used + 1))
            responses = rule["responses"]
            response = responses[min(used, len(responses) - 1)]
            sys.stdout.write(response.get("stdout", ""))
            sys.stderr.write(response.get("stderr", ""))
            return int(response.get("exit", 0))
    print(f"fake az: no rule answers {command} {json.dumps(options)}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
