"""The deployment (azure.yaml, infra/*.bicep, hook scripts, sync-config.json, .funcignore) without Azure.

No Bicep compiler runs here, so every ``.bicep`` file goes through a small tokenizer-level check:
balanced brackets outside strings and comments, each symbol declared once, every ``param`` used,
every referenced symbol declared, resource types shaped ``Namespace/type@apiVersion``, module paths,
module params and module outputs that exist. Then the templates are cross-checked against what the
code reads: the app settings, the function names and the Key Vault event types. The hook scripts run
against a fake ``az`` that records its arguments.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared.core.config import parse_config
from shared.triggers.events import SECRET_EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
DOCS = ROOT / "docs" / "operations.md"

SYNC_APP_ROLE = "9b50c33d-700f-43b1-b2eb-87e89b703581"
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"

# --- A tokenizer for the part of Bicep these templates use -----------------------------------------------

KEYWORDS = {
    "param", "var", "resource", "module", "output", "targetScope", "metadata", "extension", "import", "type",
    "func", "existing", "if", "for", "in", "true", "false", "null", "with", "as", "using",
}  # fmt: skip
TYPES = {"string", "int", "bool", "object", "array", "secureString", "secureObject"}
NAMESPACES = {"az", "sys"}
RESOURCE_TYPE = re.compile(
    r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+(/[A-Za-z][A-Za-z0-9]*)+"
    r"@(\d{4}-\d{2}-\d{2}(-preview)?|v1\.0|beta)$"
)
PAIRS = {"(": ")", "[": "]", "{": "}"}


@dataclass
class Token:
    kind: str  # ident, string, punct, op, number, newline
    text: str
    line: int
    interpolated: list[Token] = field(default_factory=list)  # tokens of ${...} inside a string


class BicepSyntaxError(AssertionError):
    pass


def tokenize(text: str, line: int = 1) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            i += 1
        elif ch in " \t\r":
            i += 1
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated block comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif text.startswith("'''", i):
            end = text.find("'''", i + 3)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated multi-line string")
            tokens.append(Token("string", text[i + 3 : end], line))
            line += text.count("\n", i, end)
            i = end + 3
        elif ch == "'":
            token, i = _string(text, i, line)
            tokens.append(token)
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("ident", text[i:j], line))
            i = j
        elif ch.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            tokens.append(Token("number", text[i:j], line))
            i = j
        elif ch in "()[]{}":
            tokens.append(Token("punct", ch, line))
            i += 1
        else:
            for op in ("=>", "==", "!=", ">=", "<=", "&&", "||", "??", ".?", "::"):
                if text.startswith(op, i):
                    tokens.append(Token("op", op, line))
                    i += len(op)
                    break
            else:
                if ch not in "=:.,?!<>+-*/%@|":
                    raise BicepSyntaxError(f"line {line}: unexpected character {ch!r}")
                tokens.append(Token("op", ch, line))
                i += 1
    return tokens


def _string(text: str, start: int, line: int) -> tuple[Token, int]:
    """A single-quoted string with escapes and ``${...}`` interpolations (tokenized recursively)."""
    i, n = start + 1, len(text)
    parts: list[str] = []
    inner: list[Token] = []
    while True:
        if i >= n or text[i] == "\n":
            raise BicepSyntaxError(f"line {line}: unterminated string")
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n or text[i + 1] not in "\\'nrt$u":
                raise BicepSyntaxError(f"line {line}: bad escape in string")
            parts.append(text[i : i + 2])
            i += 2
        elif ch == "'":
            return Token("string", "".join(parts), line, inner), i + 1
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if j >= n:
                    raise BicepSyntaxError(f"line {line}: unterminated interpolation")
                if text[j] == "'":
                    _, j = _string(text, j, line)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            expression = tokenize(text[i + 2 : j - 1], line)
            check_balanced(expression)
            inner.extend(expression)
            parts.append("${…}")
            i = j
        else:
            parts.append(ch)
            i += 1


def check_balanced(tokens: list[Token]) -> None:
    stack: list[Token] = []
    for token in tokens:
        if token.kind != "punct":
            continue
        if token.text in PAIRS:
            stack.append(token)
        else:
            if not stack or PAIRS[stack[-1].text] != token.text:
                raise BicepSyntaxError(f"line {token.line}: unbalanced {token.text!r}")
            stack.pop()
    if stack:
        raise BicepSyntaxError(f"line {stack[-1].line}: {stack[-1].text!r} is never closed")


@dataclass
class BicepFile:
    path: Path
    tokens: list[Token]
    params: dict[str, bool] = field(default_factory=dict)  # name -> has a default
    declared: dict[str, str] = field(default_factory=dict)  # name -> kind (param/var/resource/module/...)
    outputs: list[str] = field(default_factory=list)
    resource_types: dict[str, str] = field(default_factory=dict)
    modules: dict[str, Path] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)
    locals: set[str] = field(default_factory=set)  # lambda and loop variables
    problems: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def statements(tokens: list[Token]) -> list[list[Token]]:
    """Top-level statements: split at newlines outside brackets (a decorator is a statement of its own)."""
    result: list[list[Token]] = []
    current: list[Token] = []
    depth = 0
    for token in tokens:
        if token.kind == "punct":
            depth += 1 if token.text in PAIRS else -1
        if token.kind == "newline" and depth == 0:
            if current:
                result.append(current)
                current = []
            continue
        current.append(token)
    if current:
        result.append(current)
    return result


@cache
def parse(path: Path) -> BicepFile:
    tokens = tokenize(path.read_text(encoding="utf-8"))
    check_balanced(tokens)
    bicep = BicepFile(path, tokens)
    for body in statements(tokens):
        if body[0].text == "@":  # a decorator: @name(...)
            continue
        keyword = body[0].text
        if keyword in ("param", "var", "resource", "module", "output", "type", "func"):
            if len(body) < 2 or body[1].kind != "ident":
                bicep.problems.append(f"line {body[0].line}: {keyword} without a name")
                continue
            name = body[1].text
            if keyword == "output":
                if name in bicep.outputs:
                    bicep.problems.append(f"output {name} declared twice")
                bicep.outputs.append(name)
                continue
            if name in bicep.declared:
                bicep.problems.append(f"{name} declared twice ({bicep.declared[name]} and {keyword})")
            bicep.declared[name] = keyword
            if keyword == "param":
                bicep.params[name] = any(t.text == "=" for t in body[2:])
            if keyword in ("resource", "module"):
                if len(body) < 3 or body[2].kind != "string":
                    bicep.problems.append(f"{keyword} {name}: no type string")
                    continue
                if keyword == "resource":
                    bicep.resource_types[name] = body[2].text
                else:
                    bicep.modules[name] = (path.parent / body[2].text).resolve()
        elif keyword == "extension":
            bicep.extensions.append(body[1].text)
        elif keyword not in ("targetScope", "metadata", "import"):
            bicep.problems.append(f"line {body[0].line}: unexpected top-level statement {keyword!r}")
    _collect_locals(bicep)
    return bicep


def _collect_locals(bicep: BicepFile) -> None:
    tokens = [t for t in _all_tokens(bicep.tokens) if t.kind != "newline"]
    for i, token in enumerate(tokens):
        if token.text == "=>":
            if tokens[i - 1].kind == "ident":
                bicep.locals.add(tokens[i - 1].text)
            elif tokens[i - 1].text == ")":
                k = i - 2
                while k >= 0 and tokens[k].text != "(":
                    if tokens[k].kind == "ident":
                        bicep.locals.add(tokens[k].text)
                    k -= 1
        if token.text == "for" and token.kind == "ident":
            k = i + 1
            while k < len(tokens) and tokens[k].text != "in":
                if tokens[k].kind == "ident":
                    bicep.locals.add(tokens[k].text)
                k += 1


def _all_tokens(tokens: list[Token]) -> list[Token]:
    result = []
    for token in tokens:
        result.append(token)
        if token.interpolated:
            result.extend(_all_tokens(token.interpolated))
    return result


def references(bicep: BicepFile) -> list[Token]:
    """Identifiers used as symbols: not keywords, types, property keys, member names or function names."""
    found: list[Token] = []
    _references(bicep.tokens, found, top_level=True)
    return found


def _references(tokens: list[Token], found: list[Token], top_level: bool) -> None:
    for i, token in enumerate(tokens):
        if token.interpolated:
            _references(token.interpolated, found, top_level=False)
        if token.kind != "ident" or token.text in KEYWORDS:
            continue
        before = tokens[i - 1] if i > 0 else None
        after = next((t for t in tokens[i + 1 :] if t.kind != "newline"), None)
        if before is not None and before.text in (".", ".?", "::"):
            continue  # member access
        if after is not None and after.text == "(":
            continue  # a function call
        if after is not None and after.text == "." and token.text in NAMESPACES:
            continue
        if (
            after is not None
            and after.text == ":"
            and (before is None or before.kind == "newline" or before.text in "{,")
        ):
            continue  # an object property key
        if top_level and before is not None and before.text in ("param", "var", "resource", "module", "output", "type"):
            continue  # the declaration itself
        if top_level and i >= 2 and tokens[i - 2].text in ("param", "output") and token.text in TYPES:
            continue
        if top_level and before is not None and before.text == "extension":
            continue
        if top_level and before is not None and before.text == "@":
            continue  # decorator name
        found.append(token)


def check_bicep(path: Path) -> list[str]:
    bicep = parse(path)
    problems = list(bicep.problems)
    used = references(bicep)
    used_names = {t.text for t in used}
    for token in used:
        name = token.text
        if name not in bicep.declared and name not in bicep.locals and name not in bicep.extensions:
            problems.append(f"line {token.line}: {name} is used but never declared")
    for name in bicep.params:
        if name not in used_names:
            problems.append(f"param {name} is never used")
    for name, kind in bicep.declared.items():
        if kind == "var" and name not in used_names:  # resources and modules may stand alone
            problems.append(f"var {name} is never used")
    for name, type_ in bicep.resource_types.items():
        if not RESOURCE_TYPE.match(type_):
            problems.append(f"resource {name}: type {type_!r} is not Namespace/type@apiVersion")
    for name, module_path in bicep.modules.items():
        if not module_path.is_file():
            problems.append(f"module {name}: {module_path} does not exist")
    return problems


def module_params(bicep: BicepFile, module: str) -> tuple[set[str], int]:
    """Keys of ``params: { ... }`` in a module declaration, and the declaration's line."""
    tokens = bicep.tokens
    start = next(i for i, t in enumerate(tokens) if t.text == module and i > 0 and tokens[i - 1].text == "module")
    i = start
    while not (tokens[i].text == "params" and tokens[i + 1].text == ":"):
        i += 1
    assert tokens[i + 2].text == "{"
    keys, depth = set(), 0
    for k in range(i + 2, len(tokens)):
        token = tokens[k]
        if token.kind == "punct":
            depth += 1 if token.text in PAIRS else -1
            if depth == 0:
                break
        elif depth == 1 and token.kind == "ident" and tokens[k + 1].text == ":" and tokens[k - 1].text in "\n{,":
            keys.add(token.text)
    return keys, tokens[start].line


# --- Bicep ------------------------------------------------------------------------------------------------


def test_the_templates_exist() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in BICEP_FILES}
    assert {"main.bicep", "events.bicep", "app/function.bicep", "app/graph-permission.bicep"} <= names


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_is_well_formed(path: Path) -> None:
    assert check_bicep(path) == []


def test_the_checker_catches_what_it_claims_to(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bicep"
    bad.write_text(
        "param unused string\nparam used string = 'x'\nvar a = used\nvar a = 'twice'\n"
        "resource r 'Microsoft.Web/sites' = {\n  name: missing\n  properties: { x: '${alsoMissing}' }\n}\n"
        "output o string = r.name\n"
    )
    problems = check_bicep(bad)
    assert "a declared twice (var and var)" in problems
    assert "param unused is never used" in problems
    assert any("missing is used but never declared" in p for p in problems)
    assert any("alsoMissing is used but never declared" in p for p in problems)
    assert any("not Namespace/type@apiVersion" in p for p in problems)
    for broken, expected in [("var x = {\n", "never closed"), ("var x = 'open\n", "unterminated"),
                             ("var x = [1, 2)\n", "unbalanced"), ("var x = 'a${b'\n", "unterminated")]:  # fmt: skip
        (tmp_path / "broken.bicep").write_text(broken)
        parse.cache_clear()
        with pytest.raises(BicepSyntaxError, match=expected):
            parse(tmp_path / "broken.bicep")


def test_modules_get_every_required_param_and_nothing_else() -> None:
    for path in BICEP_FILES:
        bicep = parse(path)
        for module, module_path in bicep.modules.items():
            target = parse(module_path)
            passed, line = module_params(bicep, module)
            unknown = passed - set(target.params)
            missing = {p for p, has_default in target.params.items() if not has_default} - passed
            assert not unknown, f"{path.name}:{line} module {module} passes unknown params {unknown}"
            assert not missing, f"{path.name}:{line} module {module} misses required params {missing}"


def test_module_outputs_that_are_used_exist() -> None:
    for path in BICEP_FILES:
        bicep = parse(path)
        tokens = [t for t in _all_tokens(bicep.tokens) if t.kind != "newline"]
        for i, token in enumerate(tokens[:-3]):
            if token.text in bicep.modules and tokens[i + 1].text == "." and tokens[i + 2].text == "outputs":
                output = tokens[i + 4].text
                assert output in parse(bicep.modules[token.text]).outputs, f"{path.name}: {token.text}.outputs.{output}"


def test_the_graph_extension_alias_is_configured() -> None:
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    graph = parse(INFRA / "app" / "graph-permission.bicep")
    assert graph.extensions == ["microsoftGraphV1"]
    assert config["extensions"]["microsoftGraphV1"].startswith(
        "br:mcr.microsoft.com/bicep/extensions/microsoftgraph/v1.0:"
    )
    for path in BICEP_FILES:
        if path.name != "graph-permission.bicep":
            assert parse(path).extensions == [], f"{path.name}: only the Graph module needs the extension"


def test_the_graph_app_role_assignment() -> None:
    graph = parse(INFRA / "app" / "graph-permission.bicep")
    assert set(graph.resource_types.values()) == {
        "Microsoft.Graph/servicePrincipals@v1.0",
        "Microsoft.Graph/appRoleAssignedTo@v1.0",
    }
    assert SYNC_APP_ROLE in graph.text and MICROSOFT_GRAPH_APP_ID in graph.text
    main = parse(INFRA / "main.bicep").text
    assert "module graphPermission 'app/graph-permission.bicep' = if (graphPermissionGrant == 'bicep')" in main
    assert re.search(r"@allowed\(\[\s*'bicep'\s*'script'\s*'none'\s*\]\)\s*param graphPermissionGrant", main)


def test_key_vault_secrets_user_on_the_existing_vault() -> None:
    access = parse(INFRA / "app" / "keyvault-access.bicep")
    assert KEY_VAULT_SECRETS_USER in access.text
    assert re.search(r"resource vault 'Microsoft\.KeyVault/vaults@[\d-]+' existing", access.text)
    main = parse(INFRA / "main.bicep")
    assert main.params["keyVaultName"] is False and main.params["keyVaultResourceGroupName"] is False
    assert "scope: resourceGroup(vaultSubscriptionId, keyVaultResourceGroupName)" in main.text


def test_flex_consumption_with_identity_based_storage() -> None:
    function = parse(INFRA / "app" / "function.bicep").text
    assert "name: 'FC1'" in function and "tier: 'FlexConsumption'" in function
    assert "type: 'UserAssignedIdentity'" in function and "userAssignedIdentityResourceId: identityId" in function
    assert "name: 'python'" in function
    for setting, value in [
        ("AzureWebJobsStorage__credential", "'managedidentity'"),
        ("AzureWebJobsStorage__clientId", "identityClientId"),
        ("AzureWebJobsStorage__blobServiceUri", "storage.properties.primaryEndpoints.blob"),
        ("AzureWebJobsStorage__queueServiceUri", "storage.properties.primaryEndpoints.queue"),
        ("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "'ClientId=${identityClientId};Authorization=AAD'"),
    ]:
        assert f"{setting}: {value}" in function
    # Flex Consumption rejects these as app settings; the runtime is in functionAppConfig.
    assert "FUNCTIONS_WORKER_RUNTIME" not in function.replace("FUNCTIONS_WORKER_RUNTIME and", "")
    assert "AzureWebJobsStorage:" not in function  # no connection string
    storage = parse(INFRA / "app" / "storage.bicep").text
    assert "allowSharedKeyAccess: false" in storage
    monitoring = parse(INFRA / "app" / "monitoring.bicep").text
    assert "DisableLocalAuth: true" in monitoring
    main = parse(INFRA / "main.bicep").text
    assert re.search(r"@allowed\(\[\s*'3\.11'\s*'3\.12'\s*\]\)\s*param pythonVersion string = '3\.11'", main)


def test_the_event_subscription_targets_the_key_vault_trigger() -> None:
    events = parse(INFRA / "events.bicep")
    assert events.resource_types["systemTopic"].startswith("Microsoft.EventGrid/systemTopics@")
    assert events.resource_types["eventSubscription"].startswith("Microsoft.EventGrid/systemTopics/eventSubscriptions@")
    text = events.text
    assert "topicType: 'Microsoft.KeyVault.vaults'" in text
    assert "endpointType: 'AzureFunction'" in text
    assert "resourceId: '${functionAppId}/functions/${functionName}'" in text
    default_function = re.search(r"param functionName string = '([^']+)'", text)
    assert default_function and default_function.group(1) in event_grid_functions()
    included = re.search(r"includedEventTypes: \[(.*?)\]", text, re.S)
    assert included and set(re.findall(r"'([^']+)'", included.group(1))) == set(SECRET_EVENT_TYPES)
    assert "operatorType: 'StringIn'" in text and "key: 'subject'" in text
    # not part of main.bicep: the function must exist before Event Grid accepts the subscription
    assert "EventGrid" not in "".join(p.read_text() for p in BICEP_FILES if p.name != "events.bicep")


def event_grid_functions() -> set[str]:
    """Names of the functions in function_app.py that carry an Event Grid trigger."""
    source = (ROOT / "function_app.py").read_text()
    return set(re.findall(r'@app\.function_name\("([^"]+)"\)\s*@app\.event_grid_trigger', source))


# --- App settings: what the code reads vs. what the templates set ----------------------------------------


def settings_the_code_reads() -> set[str]:
    """Every ``SYNC_*`` name the product code uses as a string constant (environment reads and their constants)."""
    names: set[str] = set()
    for path in [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"SYNC_[A-Z0-9_]+", node.value)
            ):
                names.add(node.value)
    return names


def settings_the_template_sets() -> set[str]:
    text = (INFRA / "app" / "function.bicep").read_text()
    return set(re.findall(r"^\s*(SYNC_[A-Z0-9_]+):", text, re.M)) | set(re.findall(r"\{ (SYNC_[A-Z0-9_]+):", text))


REQUIRED_SETTINGS = {"SYNC_CONFIG", "SYNC_MANAGED_IDENTITY_CLIENT_ID"}


def test_required_app_settings_are_set_and_optional_ones_documented() -> None:
    read = settings_the_code_reads()
    set_by_template = settings_the_template_sets()
    assert {"SYNC_CONFIG", "SYNC_ALLOWED_VAULT_HOSTS", "SYNC_MANAGED_IDENTITY_CLIENT_ID"} <= read
    assert set_by_template >= REQUIRED_SETTINGS
    assert set_by_template <= read, f"the template sets settings the code never reads: {set_by_template - read}"
    docs = DOCS.read_text()
    undocumented = {name for name in read if f"`{name}`" not in docs}
    assert not undocumented, f"app settings missing from docs/operations.md: {undocumented}"
    function = (INFRA / "app" / "function.bicep").read_text()
    assert "SYNC_CONFIG: syncConfigPath" in function
    assert "SYNC_MANAGED_IDENTITY_CLIENT_ID: identityClientId" in function
    assert "param syncConfigPath string = 'sync-config.json'" in (INFRA / "main.bicep").read_text()


def test_parameters_file_matches_main_bicep() -> None:
    main = parse(INFRA / "main.bicep")
    mapped = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(mapped) <= set(main.params), set(mapped) - set(main.params)
    required = {name for name, has_default in main.params.items() if not has_default}
    assert required <= set(mapped), f"azd would prompt for {required - set(mapped)}"
    docs = DOCS.read_text()
    for entry in mapped.values():
        for variable in re.findall(r"\$\{([A-Z_]+)", entry["value"]):
            if variable not in ("AZURE_ENV_NAME", "AZURE_LOCATION"):
                assert f"`{variable}`" in docs, f"{variable} (main.parameters.json) is not in docs/operations.md"


def test_hook_scripts_read_only_outputs_and_documented_settings() -> None:
    outputs = set(parse(INFRA / "main.bicep").outputs)
    docs = DOCS.read_text()
    builtins = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"}
    for script in sorted((INFRA / "scripts").glob("*")):
        text = script.read_text()
        names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text)) | set(re.findall(r"\$env:([A-Z][A-Z0-9_]+)", text))
        for listed in re.findall(r"foreach \(\$name in ([^)]*)\)", text):
            names |= set(re.findall(r"'([A-Z][A-Z0-9_]+)'", listed))
        for name in names - outputs - builtins:
            assert f"`{name}`" in docs, f"{script.name} reads {name}: neither a main.bicep output nor documented"


# --- azure.yaml ------------------------------------------------------------------------------------------


def read_yaml(text: str) -> dict[str, Any]:
    """The YAML subset azure.yaml uses: nested mappings by indentation, plain or quoted scalars, comments."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if "\t" in raw[:indent]:
            raise ValueError(f"line {number}: tab indentation")
        key, sep, value = line.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            raise ValueError(f"line {number}: not a 'key: value' line: {raw!r}")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if key in parent:
            raise ValueError(f"line {number}: duplicate key {key!r}")
        value = value.strip()
        if value:
            if value[0] in "'\"":
                if len(value) < 2 or value[-1] != value[0]:
                    raise ValueError(f"line {number}: unterminated quoted scalar")
                value = value[1:-1]
            parent[key] = {"true": True, "false": False}.get(value, value)
        else:
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
    return root


def test_read_yaml_understands_the_subset() -> None:
    assert read_yaml("a: 1\nb:\n  c: 'x: y'  # note\n  d:\n    e: true\nf: g\n") == {
        "a": "1", "b": {"c": "x: y", "d": {"e": True}}, "f": "g"
    }  # fmt: skip
    for bad in ("a: 1\na: 2\n", "- item\n", "a: 'open\n"):
        with pytest.raises(ValueError):
            read_yaml(bad)


def test_azure_yaml_deploys_this_directory_as_a_python_function_app() -> None:
    project = read_yaml((ROOT / "azure.yaml").read_text())
    assert project["name"] == "provisioning-secret-sync"
    assert project["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    assert project["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}
    function = (INFRA / "app" / "function.bicep").read_text()
    assert "'azd-service-name': 'api'" in function  # how azd finds the app of service "api"
    hooks = project["hooks"]
    assert set(hooks) == {"postprovision", "postdeploy"}
    for hook in hooks.values():
        assert hook["posix"]["shell"] == "sh" and hook["windows"]["shell"] == "pwsh"
        for platform in ("posix", "windows"):
            assert (ROOT / hook[platform]["run"]).is_file()
    assert hooks["postdeploy"]["posix"]["run"] == "infra/scripts/subscribe-keyvault-events.sh"
    assert "infra/events.bicep" in (ROOT / hooks["postdeploy"]["posix"]["run"]).read_text()
    assert "infra/events.bicep" in (ROOT / hooks["postdeploy"]["windows"]["run"]).read_text()


# --- What ships ------------------------------------------------------------------------------------------


def test_sync_config_json_is_a_valid_example() -> None:
    config = parse_config((ROOT / "sync-config.json").read_text(), source="sync-config.json")
    assert config.targets and config.managed_identity_client_id is None  # the template sets it
    with_setting = parse_config(
        (ROOT / "sync-config.json").read_text(), managed_identity_client_id="11111111-2222-3333-4444-555555555555"
    )
    assert with_setting.managed_identity_client_id == "11111111-2222-3333-4444-555555555555"
    assert json.loads((ROOT / "local.settings.example.json").read_text())["Values"]["SYNC_CONFIG"] == "sync-config.json"


def ignored(path: str, patterns: list[str]) -> bool:
    """gitignore-style matching, enough for .funcignore (no negations are used there)."""
    parts = path.split("/")
    for pattern in patterns:
        directory = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] if anchored else parts
        for i, candidate in enumerate(candidates):
            is_last = i == len(candidates) - 1
            if fnmatch.fnmatch(candidate, pattern) and (not directory or not is_last):
                return True
    return False


def test_funcignore_ships_the_config_and_keeps_infra_and_docs_out() -> None:
    patterns = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns)
    for shipped in ("sync-config.json", "function_app.py", "host.json", "requirements.txt", "shared/cli/__init__.py"):
        assert not ignored(shipped, patterns), shipped
    for kept_out in ("infra/main.bicep", "infra/scripts/postprovision.sh", "docs/operations.md", "azure.yaml",
                     "tests/test_infra.py", "standins/graph.py", "local.settings.json"):  # fmt: skip
        assert ignored(kept_out, patterns), kept_out


# --- The hook scripts, against a fake az --------------------------------------------------------------------

FAKE_AZ = r"""#!/bin/sh
printf '%s\n' "$*" >> "$AZ_LOG"
case "$*" in
  "account show"*) exit 0 ;;
  "resource show"*) exit 0 ;;
  *"servicePrincipals(appId="*) echo "$GRAPH_SP_ID" ;;
  *"appRoleAssignments --query"*) echo "$EXISTING" ;;
  *) exit 0 ;;
esac
"""


@pytest.fixture
def fake_az(tmp_path: Path) -> tuple[dict[str, str], Path]:
    if shutil.which("sh") is None:
        pytest.skip("no POSIX shell")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ)
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "az.log"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AZ_LOG": str(log),
        "GRAPH_SP_ID": "99999999-9999-9999-9999-999999999999",
        "EXISTING": "0",
    }
    return env, log


PRINCIPAL = "12345678-1234-1234-1234-123456789abc"


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", f"infra/scripts/{name}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )


def test_grant_script_assigns_the_app_role_once(fake_az: tuple[dict[str, str], Path]) -> None:
    env, log = fake_az
    done = run_script("grant-graph-permission.sh", {**env, "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    post = next(c for c in calls if c.startswith("rest --method post"))
    assert f"--url https://graph.microsoft.com/v1.0/servicePrincipals/{PRINCIPAL}/appRoleAssignments" in post
    body = json.loads(post.split("--body ", 1)[1].split(" --output", 1)[0])
    assert body == {"principalId": PRINCIPAL, "resourceId": env["GRAPH_SP_ID"], "appRoleId": SYNC_APP_ROLE}
    assert all("--resource https://graph.microsoft.com" in c for c in calls)

    log.unlink()
    again = run_script(
        "grant-graph-permission.sh", {**env, "EXISTING": "1"}, PRINCIPAL, "https://dod-graph.microsoft.us"
    )
    assert again.returncode == 0 and "already assigned" in again.stdout
    assert not any(c.startswith("rest --method post") for c in log.read_text().splitlines())
    assert "https://dod-graph.microsoft.us/v1.0/" in log.read_text()


@pytest.mark.parametrize("args", [(), ("not-a-guid",), (PRINCIPAL, "https://evil.example")])
def test_grant_script_refuses_bad_arguments(fake_az: tuple[dict[str, str], Path], args: tuple[str, ...]) -> None:
    env, log = fake_az
    done = run_script("grant-graph-permission.sh", env, *args)
    assert done.returncode == 2
    assert not log.exists()


def test_postprovision_runs_the_grant_script_only_when_asked(fake_az: tuple[dict[str, str], Path]) -> None:
    env, log = fake_az
    base = {**env, "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL, "AZURE_FUNCTION_APP_NAME": "func-x"}
    for mode, posts in (("bicep", 0), ("none", 0), ("script", 1)):
        if log.exists():
            log.unlink()
        done = run_script("postprovision.sh", {**base, "GRAPH_PERMISSION_GRANT": mode})
        assert done.returncode == 0, done.stderr
        calls = log.read_text().splitlines() if log.exists() else []
        assert sum(c.startswith("rest --method post") for c in calls) == posts, mode
        assert "placeholder ids" in done.stderr  # the example config is still in place


def test_the_postdeploy_hook_deploys_events_bicep_with_the_outputs(fake_az: tuple[dict[str, str], Path]) -> None:
    env, log = fake_az
    function_id = "/subscriptions/s/resourceGroups/rg-app/providers/Microsoft.Web/sites/func-x"
    done = run_script(
        "subscribe-keyvault-events.sh",
        {
            **env,
            "AZURE_FUNCTION_APP_ID": function_id,
            "KEY_VAULT_NAME": "contoso-kv",
            "KEY_VAULT_RESOURCE_GROUP": "rg-vault",
            "KEY_VAULT_SUBSCRIPTION_ID": "sub-vault",
            "AZURE_ENV_NAME": "prod",
            "KEY_VAULT_EVENT_SECRETS": "contoso-scim-token, other-token",
        },
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert f"resource show --ids {function_id}/functions/keyvault_events --output none" in calls
    deploy = next(c for c in calls if c.startswith("deployment group create"))
    for part in (
        "--subscription sub-vault", "--resource-group rg-vault", "--name keyvault-events-prod",
        "--template-file infra/events.bicep", "keyVaultName=contoso-kv", "keyVaultResourceGroupName=rg-vault",
        f"functionAppId={function_id}", "secretNames=contoso-scim-token, other-token",
    ):  # fmt: skip
        assert part in deploy
    assert "systemTopicName=" not in deploy  # unset: the template's default


def test_the_postdeploy_hook_needs_the_provision_outputs(fake_az: tuple[dict[str, str], Path]) -> None:
    env, _ = fake_az
    done = run_script("subscribe-keyvault-events.sh", env)
    assert done.returncode != 0
    assert "AZURE_FUNCTION_APP_ID" in done.stderr


# --- docs/operations.md -----------------------------------------------------------------------------------


def error_codes() -> set[str]:
    """Every stable code in shared/core/errors.py."""
    tree = ast.parse((ROOT / "shared" / "core" / "errors.py").read_text())
    codes = set()
    for node in ast.walk(tree):
        is_code = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets)
        if is_code and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            codes.add(node.value.value)
    return codes


def test_the_troubleshooting_table_covers_every_error_code() -> None:
    docs = (ROOT / "README.md").read_text()
    table = docs.split("## Troubleshooting", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and " | `" in line]
    documented = {m for row in rows for m in re.findall(r"\| `([A-Za-z]+)` \|", row)}
    assert error_codes() - documented == set(), "codes missing from the troubleshooting table"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            assert cells[0] and cells[2], f"symptom and fix needed: {row}"
    for warning in ("ValidationSkipped", "UnmanagedMaskedKeys", "JobStartFailed", "SecretNearExpiry", "SecretExpired"):
        assert f"`{warning}`" in table


def test_the_docs_show_both_triggers_and_the_deploy_command() -> None:
    docs = DOCS.read_text()
    diagram = docs.split("```mermaid", 1)[1].split("```", 1)[0]
    for name in ("keyvault_events", "POST /api/sync", "validateCredentials", "PUT", "Key Vault", "Managed identity"):
        assert name in diagram
    assert "azd up" in docs
    for script in ("grant-graph-permission.sh", "grant-graph-permission.ps1", "Key Vault Secrets User"):
        assert script in docs
