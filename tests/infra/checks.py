"""Every check on the deployment, as plain functions over a tree of files (the repo, or a mutated copy).

``tests/test_infra.py`` runs each check against the repository; ``tests/test_infra_mutations.py`` applies each
deliberate breakage to a copy and runs the checks that read the broken file, in-process, expecting one to
fail. A check raises AssertionError (or lets a subprocess time out) when something is wrong.

Nothing here can compile Bicep or reach Azure: templates are parsed by pycep-parser (tests/infra/bicep.py),
resource bodies are checked against the types Bicep compiles against (tests/infra/schema.py), and the hook
scripts run for real under ``sh`` against a fake ``az`` (tests/infra/fake_az.py). The PowerShell twins
cannot run here (no pwsh); they are checked statically.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from tests.infra import tables
from tests.infra.bicep import (
    Evaluator,
    Template,
    Unevaluable,
    accessor_path,
    is_literal_string,
    is_ref,
    load,
    module_closure,
    precedence_problems,
    references,
    root_symbol,
)
from tests.infra.hooks import NOT_FOUND, Call, FakeCli, fail, ok
from tests.infra.schema import check_resource, scope_problems

# --- the tree under check -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    root: Path

    def path(self, relative: str) -> Path:
        return self.root / relative

    def text(self, relative: str) -> str:
        return self.path(relative).read_text(encoding="utf-8")

    def template(self, relative: str) -> Template:
        return load(self.path(relative))

    def bicep_files(self) -> list[Path]:
        return sorted(self.path("infra").rglob("*.bicep"))

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root.resolve()).as_posix()


@dataclass(frozen=True)
class Check:
    name: str
    reads: tuple[str, ...]  # glob patterns of the files the check depends on
    run: Callable[[Tree], None]

    def depends_on(self, relative: str) -> bool:
        return any(fnmatch(relative, pattern) for pattern in self.reads)


CHECKS: list[Check] = []
BICEP = ("infra/*.bicep", "infra/*/*.bicep", "infra/*/bicepconfig.json", "infra/bicepconfig.json")


def check(*reads: str) -> Callable[[Callable[[Tree], None]], Callable[[Tree], None]]:
    def register(function: Callable[[Tree], None]) -> Callable[[Tree], None]:
        CHECKS.append(Check(function.__name__, tuple(reads), function))
        return function

    return register


def fails(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# --- Bicep: parsing, types, API versions, scopes, symbols, modules ----------------------------------------------


@check(*BICEP)
def every_template_parses(tree: Tree) -> None:
    problems = []
    for path in tree.bicep_files():
        try:
            problems += precedence_problems(load(path))
        except Exception as error:  # noqa: BLE001 - pycep raises ValueError and lark's own errors
            problems.append(f"{tree.relative(path)}: does not parse: {error}")
    fails(problems)


@check(*BICEP, "tests/infra/schemas/arm-types.json")
def resources_match_their_types(tree: Tree) -> None:
    """API versions that exist, known properties only, required ones present, allowed scopes."""
    problems = []
    for path in tree.bicep_files():
        template = load(path)
        for resource in template.resources.values():
            problems += check_resource(template, resource) + scope_problems(template, resource)
    fails(problems)


BUILTINS = {"az", "sys"}


@check(*BICEP)
def every_symbol_is_declared_and_used(tree: Tree) -> None:
    problems = []
    for path in tree.bicep_files():
        template = load(path)
        declared = template.symbols | BUILTINS
        used = set()
        for section in ("parameters", "variables", "resources", "modules", "outputs"):
            used |= references(template.raw.get(section, {}))
        problems += [f"{path.name}: {name} is used but never declared" for name in sorted(used - declared)]
        problems += [f"{path.name}: param {name} is never used" for name in sorted(set(template.params) - used)]
        problems += [f"{path.name}: var {name} is never used" for name in sorted(set(template.variables) - used)]
        for resource in template.resources.values():
            for dependency in resource.body.get("dependsOn") or []:
                if str(dependency) not in template.resources and str(dependency) not in template.modules:
                    problems.append(f"{path.name}:{resource.symbol} dependsOn unknown {dependency}")
    fails(problems)


def scope_kind(template: Template, scope: Any) -> str:
    """What a module's ``scope:`` names: resourceGroup or subscription (no scope: the caller's own)."""
    if scope is None:
        return template.target_scope
    if is_ref(scope) and str(scope) in template.resources:
        resource = template.resources[str(scope)]
        return "resourceGroup" if resource.type.lower() == "microsoft.resources/resourcegroups" else "extension"
    if isinstance(scope, dict) and "function" in scope:
        return {"resource_group": "resourceGroup", "subscription": "subscription"}.get(scope["function"]["type"], "?")
    return "?"


PARAM_TYPES = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}


@check(*BICEP)
def modules_get_what_they_declare(tree: Tree) -> None:
    """Module files exist; params passed exist, required ones are passed, literals fit; outputs used exist."""
    problems = []
    for path in tree.bicep_files():
        template = load(path)
        for module in template.modules.values():
            where = f"{path.name}: module {module.symbol}"
            if not module.path.is_file():
                problems.append(f"{where}: {module.source} does not exist")
                continue
            target = load(module.path)
            passed = module.params
            problems += [f"{where} passes unknown param {p}" for p in sorted(set(passed) - set(target.params))]
            required = {n for n, p in target.params.items() if not p.has_default}
            problems += [f"{where} misses required param {p}" for p in sorted(required - set(passed))]
            for name, value in passed.items():
                param = target.params.get(name)
                if param is None:
                    continue
                literal = value if not is_ref(value) and not isinstance(value, dict) else None
                expected = PARAM_TYPES.get(param.type)
                if literal is not None and expected and not isinstance(literal, expected):
                    problems.append(f"{where}: {name} expects {param.type}, gets {literal!r}")
                if literal is not None and param.allowed and literal not in param.allowed:
                    problems.append(f"{where}: {name}={literal!r} is not allowed ({param.allowed})")
            if scope_kind(template, module.body.get("scope")) != target.target_scope:
                problems.append(f"{where}: deployed at {scope_kind(template, module.body.get('scope'))} scope, "
                                f"but {module.source} targets {target.target_scope}")  # fmt: skip
            # every <module>.outputs.<name> used in this template must exist
        for node_path in _accessor_chains(template.raw):
            if len(node_path) >= 3 and node_path[0] in template.modules and node_path[1] == "outputs":
                target_path = template.modules[node_path[0]].path
                if target_path.is_file() and node_path[2] not in load(target_path).outputs:
                    problems.append(f"{path.name}: {'.'.join(node_path[:3])} is not an output of {target_path.name}")
    fails(problems)


def _accessor_chains(node: Any) -> Iterator[list[str]]:
    from tests.infra.bicep import walk

    for sub in walk(node):
        operator = sub.get("operator") if isinstance(sub, dict) else None
        if isinstance(operator, dict) and operator.get("type") == "property_accessor":
            yield accessor_path(sub)


# --- tracing a value back through module calls -----------------------------------------------------------------


def callers(tree: Tree, target: Path) -> list[tuple[Template, Any]]:
    """Every (template, module) that deploys ``target``."""
    found = []
    for path in tree.bicep_files():
        template = load(path)
        for module in template.modules.values():
            if module.path == target.resolve():
                found.append((template, module))
    return found


def origins(tree: Tree, template: Template, expression: Any) -> list[tuple[Template, Any]]:
    """Where a value comes from: follows a bare parameter to the arguments its callers pass, recursively."""
    if is_ref(expression) and str(expression) in template.params:
        upstream = callers(tree, template.path)
        if upstream:
            result = []
            for caller, module in upstream:
                argument = module.params.get(str(expression))
                if argument is None:
                    result.append((template, expression))  # the default applies
                else:
                    result += origins(tree, caller, argument)
            return result
    return [(template, expression)]


def principal_kind(tree: Tree, template: Template, expression: Any) -> str:
    """Which identity a principalId resolves to: 'identity', 'system topic', or what it really is."""
    kinds = set()
    for source_template, source in origins(tree, template, expression):
        chain = accessor_path(source)
        if chain[:3] == ["identity", "outputs", "principalId"]:
            identity = source_template.modules.get("identity")
            output = load(identity.path).outputs.get("principalId") if identity else None
            inner = accessor_path(output.value) if output else []
            resource = load(identity.path).resources.get(inner[0]) if identity and inner else None
            if (
                resource
                and resource.type == "Microsoft.ManagedIdentity/userAssignedIdentities"
                and inner[1:]
                == [
                    "properties",
                    "principalId",
                ]
            ):
                kinds.add("identity")
                continue
        topic = source_template.resources.get(chain[0])
        if topic and topic.type == "Microsoft.EventGrid/systemTopics" and chain[1:] == ["identity", "principalId"]:
            kinds.add("system topic")
            continue
        kinds.add(f"{source_template.path.name}: {'.'.join(chain)}")
    return " / ".join(sorted(kinds))


def role_definition(template: Template, expression: Any) -> str | None:
    """The GUID of ``subscriptionResourceId('Microsoft.Authorization/roleDefinitions', <guid or var>)``."""
    if not (isinstance(expression, dict) and "function" in expression):
        return None
    function = expression["function"]
    if function["type"] != "subscription_resource_id":
        return None
    parameters = function["parameters"]
    if parameters.get("resource_type") != "Microsoft.Authorization/roleDefinitions":
        return None
    value = parameters.get("resource_name_1")
    if is_ref(value):
        value = template.variables.get(str(value))
    return value if is_literal_string(value) else None


@check(*BICEP)
def role_assignments_match_the_documented_table(tree: Tree) -> None:
    """Role GUIDs, scope resources, principal (object) ids of the right identity, names, principalType."""
    by_guid = {guid: name for name, guid in tables.ROLES.items()}
    forbidden = {guid: name for name, guid in tables.FORBIDDEN_ROLES.items()}
    problems, assignments = [], set()
    for path in tree.bicep_files():
        template = load(path)
        for resource in template.resources_of_type("Microsoft.Authorization/roleAssignments"):
            where = f"{path.name}:{resource.symbol}"
            properties = resource.body.get("properties") or {}
            guid = role_definition(template, properties.get("roleDefinitionId"))
            if guid in forbidden:
                problems.append(f"{where}: assigns {forbidden[guid]}, which nothing here needs")
                continue
            if guid not in by_guid:
                problems.append(f"{where}: role definition {guid!r} is not in the documented table")
                continue
            scope = resource.body.get("scope")
            scope_resource = template.resources.get(str(scope)) if is_ref(scope) else None
            if scope_resource is None:
                problems.append(f"{where}: no scope: the role would apply to the whole resource group")
                continue
            if properties.get("principalType") != "ServicePrincipal":
                problems.append(f"{where}: principalType must be 'ServicePrincipal' for a managed identity")
            kind = principal_kind(tree, template, properties.get("principalId"))
            assignments.add((by_guid[guid], scope_resource.type, kind))
            name = resource.body.get("name")
            arguments = list(((name or {}).get("function") or {}).get("parameters", {}).values())
            expected = [root_symbol(arguments[0]) if arguments else None, properties.get("principalId")]
            if (
                not (isinstance(name, dict) and name.get("function", {}).get("type") == "guid")
                or expected[0] != str(scope)
                or accessor_path(arguments[0])[1:] != ["id"]
                or str(arguments[1]) != str(expected[1])
                or role_definition(template, _role_id_call(arguments[2])) != guid
            ):
                problems.append(f"{where}: name must be guid({scope}.id, principalId, <role>) - stable and unique")
    missing = tables.EXPECTED_ASSIGNMENTS - assignments
    extra = assignments - tables.EXPECTED_ASSIGNMENTS
    problems += [f"missing role assignment {m}" for m in sorted(missing)]
    problems += [f"unexpected role assignment {e}" for e in sorted(extra)]
    fails(problems)


def _role_id_call(argument: Any) -> Any:
    """The third guid() argument is the role variable: wrap it as the roleDefinitionId call to resolve it."""
    return {"function": {"type": "subscription_resource_id", "parameters": {
        "resource_type": "Microsoft.Authorization/roleDefinitions", "resource_name_1": argument}}}  # fmt: skip


@check(*BICEP)
def the_vault_role_is_deployed_into_the_vaults_own_group(tree: Tree) -> None:
    """The only deployment outside the app's group: the vault's group, in the vault's subscription."""
    main = tree.template(MAIN)
    problems = []
    access = [m for m in main.modules.values() if m.path.name == "keyvault-access.bicep"]
    if len(access) != 1:
        fails(["main.bicep deploys keyvault-access.bicep exactly once"])
    scope = access[0].body.get("scope")
    function = scope.get("function") if isinstance(scope, dict) else None
    parameters = (function or {}).get("parameters", {})
    if (function or {}).get("type") != "resource_group" or [
        str(parameters.get("subscription_id")),
        str(parameters.get("resource_group_name")),
    ] != ["vaultSubscriptionId", "keyVaultResourceGroupName"]:
        problems.append("keyvault-access must be scoped resourceGroup(vaultSubscriptionId, keyVaultResourceGroupName)")
    default = main_evaluator(tree).symbol("vaultSubscriptionId")
    chosen = main_evaluator(tree, keyVaultSubscriptionId="sub-vault").symbol("vaultSubscriptionId")
    if default != main_evaluator(tree).context.subscription_id or chosen != "sub-vault":
        problems.append("vaultSubscriptionId: KEY_VAULT_SUBSCRIPTION_ID, else the deployment subscription")
    other_groups = [m.symbol for m in main.modules.values() if m is not access[0] and str(m.body.get("scope")) != "rg"]
    problems += [f"module {name} must deploy into the app's own resource group (scope: rg)" for name in other_groups]
    fails(problems)


# --- main.bicep: parameters, names per environment, outputs -----------------------------------------------------

MAIN = "infra/main.bicep"
MAIN_PARAMS = {"environmentName": "prod", "location": "westeurope", "keyVaultName": "contoso-kv",
               "keyVaultResourceGroupName": "rg-secrets"}  # fmt: skip


def main_evaluator(tree: Tree, **params: Any) -> Evaluator:
    return Evaluator(tree.template(MAIN), {**MAIN_PARAMS, **params})


@check(*BICEP)
def names_are_unique_per_environment(tree: Tree) -> None:
    """Two environments (same subscription and region, same vault) never share a name."""
    main = tree.template(MAIN)
    first, second = main_evaluator(tree), main_evaluator(tree, environmentName="staging")
    problems = []
    for module in main.modules.values():
        a, b = first.eval(module.body["name"]), second.eval(module.body["name"])
        if a == b:
            problems.append(f"module {module.symbol}: deployment name {a!r} is the same in every environment")
        for name, value in module.params.items():
            # resource names (containers live inside this environment's own storage account)
            if name == "name" or (name.endswith("Name") and not name.endswith("ContainerName")):
                try:
                    a, b = first.eval(value), second.eval(value)
                except Unevaluable:
                    continue
                if a == b and not (is_ref(value) and str(value) in main.params):
                    problems.append(f"module {module.symbol}: {name} {a!r} is the same in every environment")
    for output in ("EVENT_SUBSCRIPTION_NAME", "RESOURCE_TOKEN", "AZURE_RESOURCE_GROUP"):
        try:
            a, b = first.output(output), second.output(output)
        except (Unevaluable, KeyError) as error:
            if output == "AZURE_RESOURCE_GROUP":
                a, b = first.eval(main.resources["rg"].body["name"]), second.eval(main.resources["rg"].body["name"])
            else:
                problems.append(f"output {output}: {error}")
                continue
        if a == b:
            problems.append(f"output {output}: {a!r} is the same in every environment")
    other_subscription = Evaluator(main, MAIN_PARAMS, context=type(first.context)(subscription_id="s-2"))
    if other_subscription.output("RESOURCE_TOKEN") == first.output("RESOURCE_TOKEN"):
        problems.append("RESOURCE_TOKEN does not depend on the subscription")
    # What the hooks and events.bicep create outside the resource group is named by these: no defaults.
    events = tree.template("infra/events.bicep")
    for name in ("subscriptionName", "systemTopicName", "createSystemTopic", "ownerToken"):
        if name not in events.params or events.params[name].has_default:
            problems.append(
                f"events.bicep: param {name} must exist without a default (each environment passes its own)"
            )
    for module in events.modules.values():
        if "ownerToken" not in references(module.body.get("name")):
            problems.append(f"events.bicep: module {module.symbol}'s deployment name must carry ownerToken")
    fails(problems)


@check(*BICEP)
def graph_grant_modes_and_roles(tree: Tree) -> None:
    """The grant mode per cloud, the role a parameter in every mode, ids from the documented table."""
    main = tree.template(MAIN)
    problems = []
    grant = main.params.get("graphPermissionGrant")
    if grant is None or grant.allowed != ["", "bicep", "script", "none"] or grant.default != "":
        problems.append("graphPermissionGrant: allowed '', bicep, script, none; default '' (decided per cloud)")
    role = main.params.get("graphAppRole")
    if (
        role is None
        or set(role.allowed or []) != set(tables.APP_ROLES)
        or role.default != "Synchronization.ReadWrite.All"
    ):
        problems.append(f"graphAppRole: allowed {sorted(tables.APP_ROLES)}, default Synchronization.ReadWrite.All")
    cloud = main.params.get("syncCloud")
    for value in (cloud.allowed if cloud else []) or []:
        mode = main_evaluator(tree, syncCloud=value).output("GRAPH_PERMISSION_MODE")
        expected = "bicep" if value == "global" else "script"  # the extension is documented public-cloud only
        if mode != expected:
            problems.append(f"syncCloud={value}: default grant mode {mode!r}, expected {expected!r}")
        for explicit in ("bicep", "script", "none"):
            chosen = main_evaluator(tree, syncCloud=value, graphPermissionGrant=explicit).output(
                "GRAPH_PERMISSION_MODE"
            )
            if chosen != explicit:
                problems.append(f"syncCloud={value}, graphPermissionGrant={explicit}: mode {chosen!r}")
    for name, guid in tables.APP_ROLES.items():
        if (
            role
            and name in (role.allowed or [])
            and main_evaluator(tree, graphAppRole=name).output("GRAPH_APP_ROLE_ID") != guid
        ):
            problems.append(f"GRAPH_APP_ROLE_ID for {name} must be {guid}")
    graph = tree.template("infra/graph/graph-permission.bicep")
    assignment = graph.resources_of_type("Microsoft.Graph/appRoleAssignedTo")
    sps = graph.resources_of_type("Microsoft.Graph/servicePrincipals")
    if len(assignment) != 1 or len(sps) != 1 or not sps[0].existing:
        problems.append(
            "graph-permission.bicep: one appRoleAssignedTo on one existing Microsoft Graph servicePrincipal"
        )
    else:
        body, sp = assignment[0].body, sps[0]
        app_id = sp.body.get("appId")
        app_id = graph.variables.get(str(app_id)) if is_ref(app_id) else app_id
        if app_id != tables.MICROSOFT_GRAPH_APP_ID:
            problems.append(
                f"graph-permission.bicep: the resource service principal must be appId {tables.MICROSOFT_GRAPH_APP_ID}"
            )
        if accessor_path(body.get("resourceId")) != [sp.symbol, "id"]:
            problems.append("graph-permission.bicep: resourceId must be the Microsoft Graph service principal's id")
        if body.get("principalId") != "principalId" or not is_ref(body.get("principalId")):
            problems.append("graph-permission.bicep: principalId must be the principalId parameter")
        app_role = graph.params.get(str(body.get("appRoleId")))
        if (
            not is_ref(body.get("appRoleId"))
            or app_role is None
            or set(app_role.allowed or []) != set(tables.APP_ROLES.values())
        ):
            problems.append(
                "graph-permission.bicep: appRoleId must be a parameter allowing exactly the documented app role ids"
            )
        if app_role is not None and app_role.has_default:
            problems.append("graph-permission.bicep: appRoleId has no default: the hook always passes the chosen role")
    fails(problems)


def nearest_bicepconfig(tree: Tree, path: Path) -> dict[str, Any]:
    directory = path.parent
    while True:
        candidate = directory / "bicepconfig.json"
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
        if directory.resolve() == tree.root.resolve() or directory.parent == directory:
            return {}
        directory = directory.parent


@check(*BICEP)
def main_template_never_needs_the_graph_extension(tree: Tree) -> None:
    """Bicep compiles a module behind a false `if` too: main.bicep's closure must not know the extension."""
    problems = []
    for template in module_closure(tree.path(MAIN)):
        if template.extensions:
            problems.append(f"{template.path.name} (deployed by main.bicep) declares extension {template.extensions}")
        if any(r.type.startswith("Microsoft.Graph/") for r in template.resources.values()):
            problems.append(f"{template.path.name} (deployed by main.bicep) declares Microsoft Graph resources")
        if nearest_bicepconfig(tree, template.path).get("extensions"):
            problems.append(f"{template.path.name}: its bicepconfig.json defines extensions")
    graph = tree.path("infra/graph/graph-permission.bicep")
    config = nearest_bicepconfig(tree, graph).get("extensions", {})
    for alias in load(graph).extensions:
        if config.get(alias) != tables.GRAPH_EXTENSION:
            problems.append(f"graph-permission.bicep: extension {alias} must resolve to {tables.GRAPH_EXTENSION}")
    if not load(graph).extensions:
        problems.append("graph-permission.bicep: declares no extension")
    fails(problems)


# --- the Function App -------------------------------------------------------------------------------------------

FUNCTION = "infra/app/function.bicep"


def literal_setting_values(template: Template) -> dict[str, Any]:
    """The app settings object: union(...) of variables, flattened (values stay expressions)."""
    settings = template.resources["appSettings"].body["properties"]
    merged: dict[str, Any] = {}
    parts = (
        list(settings["function"]["parameters"].values())
        if isinstance(settings, dict) and "function" in settings
        else [settings]
    )
    for part in parts:
        value = template.variables.get(str(part)) if is_ref(part) else part
        if isinstance(value, dict) and "operator" in value:  # empty(x) ? {} : {...}
            operands = value["operator"]["operands"]
            for branch in ("true_value", "false_value"):
                if isinstance(operands.get(branch), dict):
                    merged.update(operands[branch])
        elif isinstance(value, dict):
            merged.update(value)
    return merged


@check(*BICEP, "function_app.py")
def flex_consumption_app_is_complete(tree: Tree) -> None:
    function, main = tree.template(FUNCTION), tree.template(MAIN)
    problems = []
    plan = function.resources.get("plan")
    if plan is None or plan.get("sku", "name") != "FC1" or plan.get("sku", "tier") != "FlexConsumption":
        problems.append("the plan must be sku FC1 / FlexConsumption")
    if plan is not None and plan.get("properties", "reserved") is not True:
        problems.append("a Flex Consumption plan is Linux: properties.reserved true")
    site = function.resources.get("functionApp")
    config = (site.get("properties", "functionAppConfig") if site else None) or {}
    if site is None or site.body.get("kind") != "functionapp,linux":
        problems.append("the site must be kind 'functionapp,linux'")
    storage = (config.get("deployment") or {}).get("storage") or {}
    if (
        storage.get("type") != "blobContainer"
        or (storage.get("authentication") or {}).get("type") != "UserAssignedIdentity"
    ):
        problems.append("functionAppConfig.deployment.storage: a blobContainer read with the user-assigned identity")
    if str((storage.get("authentication") or {}).get("userAssignedIdentityResourceId")) != "identityId":
        problems.append("the deployment package must be read with the app's identity (identityId)")
    runtime = config.get("runtime") or {}
    if runtime.get("name") != "python" or str(runtime.get("version")) != "pythonVersion":
        problems.append("functionAppConfig.runtime: python, version from pythonVersion")
    python = main.params.get("pythonVersion")
    if (
        python is None
        or python.default != tables.PYTHON_VERSION
        or not set(python.allowed or []) <= tables.FLEX_PYTHON_VERSIONS
    ):
        problems.append(
            f"pythonVersion: default {tables.PYTHON_VERSION}, "
            f"allowed only Flex Consumption's {sorted(tables.FLEX_PYTHON_VERSIONS)}"
        )
    scale = config.get("scaleAndConcurrency") or {}
    if (
        str(scale.get("maximumInstanceCount")) != "maximumInstanceCount"
        or str(scale.get("instanceMemoryMB")) != "instanceMemoryMB"
    ):
        problems.append("scaleAndConcurrency must take maximumInstanceCount and instanceMemoryMB")
    count = main.params.get("maximumInstanceCount")
    low, high = tables.FLEX_MAXIMUM_INSTANCES
    if count is None or count.decorators.get("min_value") != low or count.decorators.get("max_value") != high:
        problems.append(
            f"maximumInstanceCount: @minValue({low}) @maxValue({high}), the documented Flex Consumption range"
        )
    elif not low <= count.default <= high:
        problems.append(f"maximumInstanceCount default {count.default} is outside {low}..{high}")
    memory = main.params.get("instanceMemoryMB")
    if memory is None or set(memory.allowed or []) != tables.FLEX_MEMORY_SIZES:
        problems.append(f"instanceMemoryMB: allowed {sorted(tables.FLEX_MEMORY_SIZES)}")
    tags = site.body.get("tags") if site else None
    tag_values = {}
    for part in ((tags if isinstance(tags, dict) else {}).get("function") or {}).get("parameters", {}).values():
        if isinstance(part, dict):
            tag_values.update(part)
    if tag_values.get("azd-service-name") != "api":
        problems.append("the site needs the tag azd-service-name: api, how azd finds the app of service 'api'")
    fails(problems)


EXPECTED_SETTINGS = {
    "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId", "AzureWebJobsStorage__blobServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "SYNC_CONFIG", "SYNC_MANAGED_IDENTITY_CLIENT_ID", "SYNC_LEDGER_CONTAINER", "SYNC_RECONCILE_SCHEDULE",
    "SYNC_PAUSED", "SYNC_ALLOWED_VAULT_HOSTS",
}  # fmt: skip


def settings_the_code_reads(tree: Tree) -> set[str]:
    """Every ``SYNC_*`` string constant in the product code, and every ``%SETTING%`` binding expression."""
    names: set[str] = set()
    for path in [tree.path("function_app.py"), *sorted(tree.path("shared").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.fullmatch(r"SYNC_[A-Z0-9_]+", node.value):
                    names.add(node.value)
                names |= set(re.findall(r"%([A-Za-z0-9_]+)%", node.value))
    return names


def binding_settings(tree: Tree) -> set[str]:
    """``%NAME%`` in function_app.py's decorators: the host cannot index the function without them."""
    return set(re.findall(r"%([A-Za-z0-9_]+)%", tree.text("function_app.py")))


def trace_main_value(tree: Tree, template: Template, value: Any) -> list[tuple[Template, Any]]:
    return origins(tree, template, value)


@check(*BICEP, "function_app.py", "shared/*.py", "shared/*/*.py")
def app_settings_are_exactly_what_the_app_needs(tree: Tree) -> None:
    function = tree.template(FUNCTION)
    settings = literal_setting_values(function)
    problems = []
    if set(settings) != EXPECTED_SETTINGS:
        problems.append(f"app settings: missing {sorted(EXPECTED_SETTINGS - set(settings))}, "
                        f"unexpected {sorted(set(settings) - EXPECTED_SETTINGS)}")  # fmt: skip
    for forbidden in ("FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "AzureWebJobsStorage",
                      "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__accountName"):  # fmt: skip
        if forbidden in settings:
            problems.append(
                f"{forbidden} must not be an app setting (Flex Consumption / identity-based blob-only storage)"
            )
    read = settings_the_code_reads(tree)
    for name in sorted(n for n in settings if n.startswith("SYNC_")):
        if name not in read:
            problems.append(f"{name} is set but the code never reads it")
    for name in sorted(binding_settings(tree)):
        if name not in settings:
            problems.append(
                f"function_app.py binds %{name}%: the template must set it or the host cannot load the function"
            )
    if settings.get("AzureWebJobsStorage__credential") != "managedidentity":
        problems.append("AzureWebJobsStorage__credential must be 'managedidentity'")
    main = tree.template(MAIN)
    expectations = {
        "AzureWebJobsStorage__clientId": ["identity", "outputs", "clientId"],
        "SYNC_MANAGED_IDENTITY_CLIENT_ID": ["identity", "outputs", "clientId"],
        "SYNC_LEDGER_CONTAINER": ["storage", "outputs", "ledgerContainerName"],
    }
    for name, chain in expectations.items():
        sources = [accessor_path(v) for t, v in origins(tree, function, settings.get(name)) if t.path == main.path]
        if sources != [chain]:
            problems.append(f"{name} must come from main.bicep's {'.'.join(chain)}, not {sources}")
    evaluator = main_evaluator(tree)
    for setting, param, expected in (("SYNC_RECONCILE_SCHEDULE", "reconcileSchedule", tables.RECONCILE_SCHEDULE),
                                     ("SYNC_PAUSED", "syncPaused", "false"),
                                     ("SYNC_CONFIG", "syncConfigPath", "sync-config.json")):  # fmt: skip
        sources = [(t.path.name, v) for t, v in origins(tree, function, settings.get(setting))]
        if sources != [("main.bicep", param)]:
            problems.append(f"{setting} must come from main.bicep's parameter {param}, not {sources}")
        elif evaluator.symbol(param) != expected:
            problems.append(f"{param} must default to {expected!r}, not {evaluator.symbol(param)!r}")
    schedule = str(evaluator.symbol("reconcileSchedule"))
    if len(schedule.split()) != 6:
        problems.append(f"reconcileSchedule {schedule!r} is not a 6-field NCRONTAB expression")
    paused = main.params.get("syncPaused")
    if paused is None or paused.allowed != ["true", "false"]:
        problems.append("syncPaused: allowed 'true' and 'false' only (an app setting is a string)")
    fails(problems)


@check(*BICEP)
def storage_holds_the_ledger_and_the_dead_letters(tree: Tree) -> None:
    storage, main = tree.template("infra/app/storage.bicep"), tree.template(MAIN)
    problems = []
    account = storage.resources.get("storage")
    properties = (account.body.get("properties") if account else None) or {}
    hardening = {
        "allowSharedKeyAccess": False,
        "allowBlobPublicAccess": False,
        "minimumTlsVersion": "TLS1_2",
        "supportsHttpsTrafficOnly": True,
        "defaultToOAuthAuthentication": True,
    }
    for key, value in hardening.items():
        if properties.get(key) != value:
            problems.append(f"storage account: {key} must be {value!r}")
    containers = {
        str(r.body.get("name")): r
        for r in storage.resources_of_type("Microsoft.Storage/storageAccounts/blobServices/containers")
    }
    evaluator = main_evaluator(tree)
    module = main.modules["storage"]
    for param, expected in (
        ("ledgerContainerName", tables.LEDGER_CONTAINER),
        ("deadLetterContainerName", tables.DEAD_LETTER_CONTAINER),
    ):
        if param not in containers:
            problems.append(f"storage.bicep declares no container named by {param}")
            continue
        if (containers[param].get("properties", "publicAccess")) != "None":
            problems.append(f"container {param}: publicAccess 'None'")
        try:
            value = evaluator.eval(module.params.get(param))
        except Unevaluable as error:
            problems.append(f"main.bicep passes {param}: {error}")
            continue
        if value != expected:
            problems.append(f"{param} is {value!r}, expected {expected!r} (the code's default / docs)")
    monitoring = tree.template("infra/app/monitoring.bicep").resources.get("appInsights")
    if monitoring is None or monitoring.get("properties", "DisableLocalAuth") is not True:
        problems.append("Application Insights: DisableLocalAuth true (ingestion with the identity only)")
    fails(problems)


# --- Event Grid -------------------------------------------------------------------------------------------------

EVENTS = "infra/events.bicep"


def event_grid_functions(tree: Tree) -> set[str]:
    source = tree.text("function_app.py")
    return set(re.findall(r'@app\.function_name\("([^"]+)"\)\s*@app\.event_grid_trigger', source))


@check(*BICEP, "function_app.py", "shared/triggers/events.py")
def the_subscription_delivers_key_vault_events_to_the_trigger(tree: Tree) -> None:
    from shared.triggers.events import SECRET_EVENT_TYPES

    events = tree.template(EVENTS)
    problems = []
    topics = events.resources_of_type("Microsoft.EventGrid/systemTopics")
    created = [t for t in topics if not t.existing]
    referenced = [t for t in topics if t.existing]
    if len(created) != 1 or str(created[0].condition) != "createSystemTopic" or not is_ref(created[0].condition):
        problems.append("the system topic is created only `if (createSystemTopic)`")
    if len(referenced) != 1:
        problems.append("the system topic must also be referenced as `existing` (the subscription's parent)")
    for topic in created:
        if topic.get("properties", "topicType") != "Microsoft.KeyVault.vaults":
            problems.append("topicType must be 'Microsoft.KeyVault.vaults'")
        if accessor_path(topic.get("properties", "source")) != ["vault", "id"]:
            problems.append("the topic's source must be the vault's id")
        if topic.get("identity", "type") != "SystemAssigned":
            problems.append("a created topic has a system-assigned identity (it writes the dead letters)")
        if (topic.body.get("tags") or {}).get("provisioning-secret-sync") != "ownerToken":
            problems.append(
                "a created topic carries the tag provisioning-secret-sync: ownerToken (predown deletes only those)"
            )
    subscriptions = events.resources_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    if len(subscriptions) != 1:
        fails([*problems, "exactly one event subscription"])
    subscription = subscriptions[0]
    if referenced and str(subscription.body.get("parent")) != referenced[0].symbol:
        problems.append("the subscription's parent must be the `existing` topic, never a re-declaration")
    if str(subscription.body.get("name")) != "subscriptionName" or not is_ref(subscription.body.get("name")):
        problems.append("the subscription's name is the subscriptionName parameter (per environment)")
    dependencies = {str(d) for d in subscription.body.get("dependsOn") or []}
    if created and created[0].symbol not in dependencies:
        problems.append("the subscription must depend on the topic it may create")
    properties = subscription.body.get("properties") or {}
    destination = properties.get("destination") or {}
    if destination.get("endpointType") != "AzureFunction":
        problems.append("the destination must be an AzureFunction endpoint")
    if (destination.get("properties") or {}).get("resourceId") != "${functionAppId}/functions/${functionName}":
        problems.append("the destination's resourceId must be '${functionAppId}/functions/${functionName}'")
    function_name = events.params.get("functionName")
    if function_name is None or function_name.default not in event_grid_functions(tree):
        problems.append(
            f"functionName must default to the Event Grid function in function_app.py "
            f"{sorted(event_grid_functions(tree))}"
        )
    # The keyvault_events trigger is typed func.EventGridEvent and shared/triggers/events parses that schema.
    if properties.get("eventDeliverySchema") != "EventGridSchema":
        problems.append(f"eventDeliverySchema must be 'EventGridSchema', not {properties.get('eventDeliverySchema')!r}")
    included = set((properties.get("filter") or {}).get("includedEventTypes") or [])
    if included != set(SECRET_EVENT_TYPES):
        problems.append(
            f"includedEventTypes {sorted(included)} != the events the code handles {sorted(SECRET_EVENT_TYPES)}"
        )
    retry = properties.get("retryPolicy") or {}
    if retry.get("maxDeliveryAttempts") != 30 or retry.get("eventTimeToLiveInMinutes") != 1440:
        problems.append("retryPolicy: 30 attempts within 1440 minutes (Event Grid's maximum), then dead-lettering")
    dead_letter = properties.get("deadLetterWithResourceIdentity")
    branch = ((dead_letter or {}).get("operator") or {}).get("operands", {}) if isinstance(dead_letter, dict) else {}
    chosen = branch.get("true_value") if branch else dead_letter
    if not isinstance(chosen, dict) or str(branch.get("condition")) != "enableDeadLetter":
        problems.append("deadLetterWithResourceIdentity: set when enableDeadLetter")
    else:
        target = chosen.get("deadLetterDestination") or {}
        if (chosen.get("identity") or {}).get("type") != "SystemAssigned":
            problems.append("dead letters are written with the topic's system-assigned identity")
        if target.get("endpointType") != "StorageBlob":
            problems.append("the dead-letter destination is a StorageBlob container")
        target_properties = target.get("properties") or {}
        if (
            str(target_properties.get("resourceId")) != "deadLetterStorageAccountId"
            or str(target_properties.get("blobContainerName")) != "deadLetterContainerName"
        ):
            problems.append("the dead-letter destination is deadLetterStorageAccountId / deadLetterContainerName")
    if "deadLetterDestination" in properties:
        problems.append(
            "deadLetterDestination (Event Grid's own identity) needs shared keys: use deadLetterWithResourceIdentity"
        )
    access = [m for m in events.modules.values() if m.path.name == "deadletter-access.bicep"]
    if len(access) != 1 or str(access[0].condition) != "enableDeadLetter":
        problems.append("deadletter-access.bicep is deployed `if (enableDeadLetter)`")
    elif access[0].symbol not in dependencies:
        problems.append("the subscription depends on the dead-letter role assignment")
    fails(problems)


# --- parameters file, outputs, azure.yaml, workflow ------------------------------------------------------------


def parameter_mappings(tree: Tree) -> dict[str, tuple[str, str | None]]:
    """main.parameters.json: parameter -> (azd environment variable, default or None)."""
    mapped = json.loads(tree.text("infra/main.parameters.json"))["parameters"]
    result = {}
    for name, entry in mapped.items():
        match = re.fullmatch(r"\$\{([A-Z_][A-Z0-9_]*)(?:=([^}]*))?\}", str(entry.get("value")))
        assert match, f"main.parameters.json: {name} is not '${{NAME}}' or '${{NAME=default}}'"
        result[name] = (match.group(1), match.group(2))
    return result


@check(*BICEP, "infra/main.parameters.json", "docs/operations.md")
def parameters_file_matches_main_bicep(tree: Tree) -> None:
    main = tree.template(MAIN)
    mappings = parameter_mappings(tree)
    docs = tree.text("docs/operations.md")
    problems = [f"main.parameters.json maps unknown parameter {n}" for n in sorted(set(mappings) - set(main.params))]
    required = {n for n, p in main.params.items() if not p.has_default}
    problems += [f"azd would prompt for {n}: not in main.parameters.json" for n in sorted(required - set(mappings))]
    for name, (variable, default) in mappings.items():
        param = main.params.get(name)
        if param is None:
            continue
        if default is not None and param.has_default and str(param.default) != default:
            problems.append(
                f"{name}: main.parameters.json defaults {variable} to {default!r}, main.bicep to {param.default!r}"
            )
        if param.allowed and default not in (None, "") and default not in [str(a) for a in param.allowed]:
            problems.append(f"{name}: default {default!r} is not allowed")
        if variable not in ("AZURE_ENV_NAME", "AZURE_LOCATION") and f"`{variable}`" not in docs:
            problems.append(f"{variable} (main.parameters.json) is not documented in docs/operations.md")
    for variable in ("SYNC_RECONCILE_SCHEDULE", "SYNC_PAUSED", "GRAPH_APP_ROLE", "GRAPH_PERMISSION_GRANT"):
        if variable not in {v for v, _ in mappings.values()}:
            problems.append(f"{variable} must be an azd setting (main.parameters.json)")
    fails(problems)


AZD_BUILTINS = {"AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID", "AZURE_LOCATION", "AZURE_RESOURCE_GROUP"}
HOOK_SETTINGS = {"KEY_VAULT_EVENT_SECRETS", "KEY_VAULT_SYSTEM_TOPIC_NAME", "KEY_VAULT_SYSTEM_TOPIC_RESOURCE_GROUP",
                 "SYNC_PREDOWN_SKIP", "GRAPH_GRANT_VIA"}  # fmt: skip


POWERSHELL_AUTOMATIC = {"LASTEXITCODE", "PSScriptRoot", "ErrorActionPreference"}


def variables_read(text: str) -> set[str]:
    """Environment variables a hook script reads (POSIX ${NAME} / $NAME, PowerShell $env:NAME, loops of names)."""
    text = _code(text)
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text)) | set(re.findall(r"\$env:([A-Z][A-Z0-9_]+)", text))
    names |= set(re.findall(r"\$([A-Z][A-Z0-9_]+)\b", text))
    for listed in re.findall(r"for name in ([^;]*);", text, re.S) + re.findall(
        r"foreach \(\$name in ([^)]*)\)", text, re.S
    ):
        names |= set(re.findall(r"'?\b([A-Z][A-Z0-9_]{3,})\b'?", listed))
    return names - POWERSHELL_AUTOMATIC


@check(*BICEP, "infra/scripts/*", "docs/operations.md")
def hooks_read_only_outputs_and_documented_settings(tree: Tree) -> None:
    outputs = set(tree.template(MAIN).outputs)
    docs = tree.text("docs/operations.md")
    problems = []
    for script in sorted(tree.path("infra/scripts").iterdir()):
        for name in sorted(variables_read(script.read_text(encoding="utf-8")) - outputs - AZD_BUILTINS):
            if name in HOOK_SETTINGS or name in {"GRAPH_APP_ROLE_ID", "MANAGED_IDENTITY_PRINCIPAL_ID", "GRAPH_ROOT"}:
                if f"`{name}`" not in docs:
                    problems.append(f"{script.name} reads {name}: document it in docs/operations.md")
                continue
            problems.append(
                f"{script.name} reads {name}: neither a main.bicep output, an azd built-in nor a hook setting"
            )
    needed = {"AZURE_FUNCTION_APP_ID", "KEY_VAULT_ID", "KEY_VAULT_ROLE_ASSIGNMENT_ID", "EVENT_SUBSCRIPTION_NAME",
              "RESOURCE_TOKEN", "STORAGE_ACCOUNT_ID", "DEAD_LETTER_CONTAINER", "GRAPH_PERMISSION_MODE",
              "GRAPH_APP_ROLE_ID", "GRAPH_ROOT", "MANAGED_IDENTITY_PRINCIPAL_ID", "AZURE_RESOURCE_GROUP"}  # fmt: skip
    problems += [f"main.bicep must output {name} (the hooks use it)" for name in sorted(needed - outputs)]
    fails(problems)


def read_azure_yaml(tree: Tree) -> dict[str, Any]:
    return yaml.safe_load(tree.text("azure.yaml"))


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


@check("azure.yaml", "infra/scripts/*")
def azure_yaml_requires_a_safe_azd_and_wires_every_hook(tree: Tree) -> None:
    project = read_azure_yaml(tree)
    problems = []
    required = str((project.get("requiredVersions") or {}).get("azd", ""))
    match = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)", required.strip())
    if not match or version_tuple(match.group(1)) < tables.AZD_MINIMUM:
        problems.append(
            f"requiredVersions.azd must be '>= {'.'.join(map(str, tables.AZD_MINIMUM))}' or later, not {required!r}"
        )
    if project.get("infra") != {"provider": "bicep", "path": "infra", "module": "main"}:
        problems.append("infra: bicep, infra/, main")
    if project.get("services") != {"api": {"project": ".", "language": "python", "host": "function"}}:
        problems.append("services: api, this directory, python, function")
    hooks = project.get("hooks") or {}
    expected = {"postprovision": "postprovision", "postdeploy": "subscribe-keyvault-events", "predown": "predown"}
    if set(hooks) != set(expected):
        problems.append(f"hooks must be exactly {sorted(expected)}, not {sorted(hooks)}")
    for hook, stem in expected.items():
        entry = hooks.get(hook) or {}
        for platform, shell, extension in (("posix", "sh", ".sh"), ("windows", "pwsh", ".ps1")):
            spec = entry.get(platform) or {}
            if spec.get("shell") != shell or spec.get("run") != f"infra/scripts/{stem}{extension}":
                problems.append(f"{hook}.{platform}: shell {shell}, run infra/scripts/{stem}{extension}")
            elif not tree.path(spec["run"]).is_file():
                problems.append(f"{hook}.{platform}: {spec['run']} does not exist")
            if spec.get("continueOnError") is not False:
                problems.append(f"{hook}.{platform}: continueOnError false (a failed hook must stop azd)")
    fails(problems)


@check(".github/workflows/infra.yml", "infra/*.bicep", "infra/*/*.bicep")
def workflow_compiles_every_template_and_previews_only_with_credentials(tree: Tree) -> None:
    workflow = yaml.safe_load(tree.text(".github/workflows/infra.yml"))
    problems = []
    jobs = workflow.get("jobs") or {}
    steps = [step for job in jobs.values() for step in job.get("steps") or []]
    scripts = "\n".join(str(step.get("run", "")) for step in steps)
    if not re.search(r"^\s*az bicep build --file ", scripts, re.M):
        problems.append("the workflow must compile the templates with az bicep build --file")
    for path in tree.bicep_files():
        relative = tree.relative(path)
        if relative not in scripts and "infra/**/*.bicep" not in scripts and "find infra" not in scripts:
            problems.append(f"the workflow does not build {relative}")
    preview = [
        (job, step)
        for job in jobs.values()
        for step in job.get("steps") or []
        if "azd provision --preview" in str(step.get("run", ""))
    ]
    if not preview:
        problems.append("the workflow must run azd provision --preview")
    for job, step in preview:
        condition = f"{job.get('if', '')} {step.get('if', '')}"
        if not re.search(r"\b(secrets|vars)\.AZURE_", condition):
            problems.append("azd provision --preview must run only when Azure credentials are configured (an `if:`)")
    fails(problems)


# --- the hook scripts, run for real ------------------------------------------------------------------------------


@check("infra/scripts/*.sh")
def shell_hooks_pass_shellcheck(tree: Tree) -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(__import__("sys").executable).with_name("shellcheck"))
    scripts = [p.name for p in sorted(tree.path("infra/scripts").glob("*.sh"))]
    done = subprocess.run([shellcheck, "-s", "sh", "-x", *[f"infra/scripts/{s}" for s in scripts]],
                          cwd=tree.root, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def fake_cli() -> Iterator[FakeCli]:
    with tempfile.TemporaryDirectory(prefix="fake-az-") as workdir:
        yield FakeCli(Path(workdir))


PRINCIPAL = "12345678-1234-1234-1234-123456789abc"
GRAPH_SP = "99999999-8888-7777-6666-555555555555"
SYNC_ROLE = tables.APP_ROLES["Synchronization.ReadWrite.All"]
OWNED_BY = tables.APP_ROLES["Application.ReadWrite.OwnedBy"]
SP_URL = rf"/servicePrincipals/{PRINCIPAL}\?\$select=id$"
REPLICATION = fail('ERROR: Bad Request({"error":{"message":"Not a valid reference update."}})')


def graph_rules(cli: FakeCli, visible_after: int = 0, existing: str = "0", post: list[dict] | None = None) -> FakeCli:
    cli.on("account show")
    cli.on("rest", *([NOT_FOUND] * visible_after), ok(), method="get", url_re=SP_URL)
    cli.on("rest", ok(GRAPH_SP + "\n"), method="get", url_re=r"appId='00000003-0000-0000-c000-000000000000'")
    cli.on("rest", ok(existing + "\n"), method="get", url_re=rf"/servicePrincipals/{PRINCIPAL}/appRoleAssignments$")
    cli.on("rest", *(post or [ok()]), method="post")
    cli.on("deployment group create", *(post or [ok()]))
    return cli


def assert_ran(done: subprocess.CompletedProcess[str], code: int, cli: FakeCli) -> None:
    assert done.returncode == code, f"exit {done.returncode}, expected {code}\n{done.stdout}\n{done.stderr}"
    assert not cli.refused, f"az refused: {[c.options for c in cli.refused]}"


def template_parameters(tree: Tree, relative: str) -> tuple[set[str], set[str]]:
    template = tree.template(relative)
    return set(template.params), {n for n, p in template.params.items() if not p.has_default}


def assert_deploys(tree: Tree, call: Call, template: str, expected: dict[str, str]) -> None:
    """A deployment passes exactly the expected parameters, all of which the template declares."""
    assert call["--template-file"] == template, call.options
    declared, required = template_parameters(tree, template)
    assert call.parameters == expected, f"--parameters {call.parameters} != {expected}"
    assert set(call.parameters) <= declared, f"{template} has no parameters {set(call.parameters) - declared}"
    assert required <= set(call.parameters), f"{template} needs {required - set(call.parameters)}"


GRANT = ("infra/scripts/grant-graph-permission.sh", "infra/scripts/common.sh")


@check(*GRANT)
def grant_script_waits_for_the_identity_then_assigns_once(tree: Tree) -> None:
    with fake_cli() as cli:
        graph_rules(cli, visible_after=2)
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 0, cli)
        gets = [c for c in cli.calls("rest") if c["--method"] == "get" and re.search(SP_URL, c["--url"])]
        assert len(gets) == 3 and cli.sleeps == [["5"], ["5"]], (len(gets), cli.sleeps)
        posts = [c for c in cli.calls("rest") if c["--method"] == "post"]
        assert len(posts) == 1, posts
        post = posts[0]
        assert post["--url"] == f"https://graph.microsoft.com/v1.0/servicePrincipals/{PRINCIPAL}/appRoleAssignments"
        assert post["--resource"] == "https://graph.microsoft.com"
        assert post["--headers"] == ["Content-Type=application/json"]
        assert json.loads(post["--body"]) == {"principalId": PRINCIPAL, "resourceId": GRAPH_SP, "appRoleId": SYNC_ROLE}
        assert all(c["--resource"] == "https://graph.microsoft.com" for c in cli.calls("rest"))


@check(*GRANT)
def grant_script_leaves_an_existing_assignment_alone(tree: Tree) -> None:
    with fake_cli() as cli:
        graph_rules(cli, existing="1")
        done = cli.run(tree.root, "grant-graph-permission.sh", {"GRAPH_APP_ROLE_ID": OWNED_BY},
                       PRINCIPAL, "https://dod-graph.microsoft.us")  # fmt: skip
        assert_ran(done, 0, cli)
        assert "already assigned" in done.stdout
        assert not [c for c in cli.calls("rest") if c["--method"] == "post"] and not cli.calls(
            "deployment group create"
        )
        listing = next(c for c in cli.calls("rest") if c["--url"].endswith("/appRoleAssignments"))
        assert listing["--url"].startswith("https://dod-graph.microsoft.us/v1.0/")
        assert listing["--query"] == f"length(value[?appRoleId=='{OWNED_BY}' && resourceId=='{GRAPH_SP}'])"


@check(*GRANT)
def grant_script_retries_replication_errors_only(tree: Tree) -> None:
    with fake_cli() as cli:
        graph_rules(cli, post=[REPLICATION, REPLICATION, ok()])
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 0, cli)
        assert len([c for c in cli.calls("rest") if c["--method"] == "post"]) == 3 and cli.sleeps == [["15"], ["15"]]
    with fake_cli() as cli:
        graph_rules(cli, post=[fail('ERROR: Forbidden({"error":{"code":"Authorization_RequestDenied"}})')])
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 1, cli)
        assert "Authorization_RequestDenied" in done.stderr
        assert len([c for c in cli.calls("rest") if c["--method"] == "post"]) == 1 and not cli.sleeps
    with fake_cli() as cli:
        graph_rules(cli, post=[REPLICATION])
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 1, cli)
        assert len([c for c in cli.calls("rest") if c["--method"] == "post"]) == 5 and len(cli.sleeps) == 4


@check(*GRANT)
def grant_script_times_out_when_the_identity_never_appears(tree: Tree) -> None:
    with fake_cli() as cli:
        graph_rules(cli, visible_after=1000)
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 1, cli)
        assert "still not visible" in done.stderr
        gets = [c for c in cli.calls("rest") if re.search(SP_URL, c["--url"])]
        assert len(gets) == 24 and len(cli.sleeps) == 23, (len(gets), len(cli.sleeps))
        assert not [c for c in cli.calls("rest") if c["--method"] == "post"]
    with fake_cli() as cli:  # not a replication delay: fail at once
        cli.on("account show")
        cli.on("rest", fail('ERROR: Forbidden({"error":{"code":"Authorization_RequestDenied"}})'))
        done = cli.run(tree.root, "grant-graph-permission.sh", {"MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL})
        assert_ran(done, 1, cli)
        assert len(cli.calls("rest")) == 1 and not cli.sleeps


@check(*GRANT, "infra/graph/graph-permission.bicep")
def grant_script_deploys_the_graph_template_in_bicep_mode(tree: Tree) -> None:
    with fake_cli() as cli:
        graph_rules(cli, post=[REPLICATION, ok()])
        env = {
            "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL,
            "GRAPH_GRANT_VIA": "bicep",
            "AZURE_RESOURCE_GROUP": "rg-prod",
            "RESOURCE_TOKEN": "tok123",
            "GRAPH_APP_ROLE_ID": OWNED_BY,
        }
        done = cli.run(tree.root, "grant-graph-permission.sh", env)
        assert_ran(done, 0, cli)
        deployments = cli.calls("deployment group create")
        assert len(deployments) == 2 and not [c for c in cli.calls("rest") if c["--method"] == "post"]
        call = deployments[-1]
        assert call["--resource-group"] == "rg-prod" and call["--name"] == "graph-permission-tok123"
        assert_deploys(
            tree, call, "infra/graph/graph-permission.bicep", {"principalId": PRINCIPAL, "appRoleId": OWNED_BY}
        )


@check(*GRANT)
def grant_script_refuses_wrong_usage_before_calling_azure(tree: Tree) -> None:
    cases = [
        ({}, ()),
        ({}, ("not-a-guid",)),
        ({}, (PRINCIPAL, "https://evil.example")),
        ({"GRAPH_APP_ROLE_ID": "11111111-2222-3333-4444-555555555555"}, (PRINCIPAL,)),
        ({"GRAPH_GRANT_VIA": "carrier-pigeon"}, (PRINCIPAL,)),
        ({"GRAPH_GRANT_VIA": "bicep"}, (PRINCIPAL,)),  # no AZURE_RESOURCE_GROUP / RESOURCE_TOKEN
    ]
    for env, args in cases:
        with fake_cli() as cli:
            done = cli.run(tree.root, "grant-graph-permission.sh", env, *args)
            assert done.returncode == 2, (env, args, done.returncode, done.stderr)
            assert not cli.calls(), (env, args, [c.command for c in cli.calls()])
    with fake_cli() as cli:
        cli.on("account show", fail("ERROR: Please run 'az login' to setup account."))
        done = cli.run(tree.root, "grant-graph-permission.sh", {}, PRINCIPAL)
        assert_ran(done, 1, cli)
        assert "az login" in done.stderr and len(cli.calls()) == 1


POSTPROVISION = ("infra/scripts/postprovision.sh", *GRANT)


@check(*POSTPROVISION)
def postprovision_grants_in_the_chosen_mode(tree: Tree) -> None:
    base = {
        "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL,
        "AZURE_FUNCTION_APP_NAME": "func-x",
        "AZURE_RESOURCE_GROUP": "rg-prod",
        "RESOURCE_TOKEN": "tok123",
        "GRAPH_APP_ROLE_ID": SYNC_ROLE,
        "GRAPH_ROOT": "https://graph.microsoft.us",
    }
    for mode, posts, deployments in (("bicep", 0, 1), ("script", 1, 0), ("none", 0, 0)):
        with fake_cli() as cli:
            graph_rules(cli)
            done = cli.run(tree.root, "postprovision.sh", {**base, "GRAPH_PERMISSION_MODE": mode})
            assert_ran(done, 0, cli)
            assert len([c for c in cli.calls("rest") if c["--method"] == "post"]) == posts, mode
            assert len(cli.calls("deployment group create")) == deployments, mode
            assert all(c["--url"].startswith("https://graph.microsoft.us/") for c in cli.calls("rest")), mode
            assert "placeholder ids" in done.stderr, mode  # the example config is still in place
            if mode == "none":
                assert f"grant-graph-permission.sh {PRINCIPAL} https://graph.microsoft.us" in done.stdout
                assert not cli.calls()
    with fake_cli() as cli:
        done = cli.run(tree.root, "postprovision.sh", {**base, "GRAPH_PERMISSION_MODE": "sometimes"})
        assert done.returncode == 2 and not cli.calls(), done.stderr


SUBSCRIBE = ("infra/scripts/subscribe-keyvault-events.sh", "infra/scripts/common.sh", "infra/events.bicep")
APP_ID = "/subscriptions/sub-app/resourceGroups/rg-prod/providers/Microsoft.Web/sites/func-sync-tok123"
VAULT_ID = "/subscriptions/sub-vault/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/contoso-kv"
STORAGE_ID = "/subscriptions/sub-app/resourceGroups/rg-prod/providers/Microsoft.Storage/storageAccounts/sttok123"
PROVISIONED = {
    "AZURE_FUNCTION_APP_ID": APP_ID, "KEY_VAULT_NAME": "contoso-kv", "KEY_VAULT_RESOURCE_GROUP": "rg-secrets",
    "KEY_VAULT_SUBSCRIPTION_ID": "sub-vault", "KEY_VAULT_ID": VAULT_ID, "EVENT_SUBSCRIPTION_NAME": "psync-tok123",
    "RESOURCE_TOKEN": "tok123", "STORAGE_ACCOUNT_ID": STORAGE_ID, "DEAD_LETTER_CONTAINER": "eventgrid-deadletter",
    "AZURE_SUBSCRIPTION_ID": "sub-app",
    "KEY_VAULT_ROLE_ASSIGNMENT_ID": f"{VAULT_ID}/providers/Microsoft.Authorization/roleAssignments/ra-1",
}  # fmt: skip
OTHER_VAULT = "/subscriptions/sub-vault/resourceGroups/rg-x/providers/Microsoft.KeyVault/vaults/other-kv"


def topic_row(name: str, group: str, source: str, identity: str = "SystemAssigned", owner: str = "") -> str:
    return "\t".join([name, group, source, identity, owner]) + "\n"


def expected_event_parameters(topic: str, create: str, dead_letter: str = "true", **extra: str) -> dict[str, str]:
    return {
        "keyVaultName": "contoso-kv", "keyVaultResourceGroupName": "rg-secrets", "functionAppId": APP_ID,
        "systemTopicName": topic, "createSystemTopic": create, "subscriptionName": "psync-tok123",
        "ownerToken": "tok123", "deadLetterStorageAccountId": STORAGE_ID,
        "deadLetterContainerName": "eventgrid-deadletter", "enableDeadLetter": dead_letter, **extra,
    }  # fmt: skip


@check(*SUBSCRIBE)
def postdeploy_waits_for_the_function_then_creates_topic_and_subscription(tree: Tree) -> None:
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show", fail(), fail(), ok())
        cli.on("eventgrid system-topic list", ok(topic_row("evgt-other", "rg-x", OTHER_VAULT)))
        cli.on("deployment group create", ok("{}"))
        env = {**PROVISIONED, "KEY_VAULT_EVENT_SECRETS": "contoso-scim-token, other-token"}
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", env)
        assert_ran(done, 0, cli)
        waits = cli.calls("resource show")
        assert [c["--ids"] for c in waits] == [[f"{APP_ID}/functions/keyvault_events"]] * 3
        assert cli.sleeps == [["10"], ["10"]]
        listing = cli.calls("eventgrid system-topic list")[0]
        assert listing["--subscription"] == "sub-vault", listing.options
        assert not cli.calls("eventgrid system-topic event-subscription show")
        [deployment] = cli.calls("deployment group create")
        assert deployment["--resource-group"] == "rg-secrets" and deployment["--subscription"] == "sub-vault"
        assert deployment["--name"] == "keyvault-events-tok123"
        assert_deploys(tree, deployment, "infra/events.bicep", expected_event_parameters(
            "evgt-contoso-kv", "true", secretNames="contoso-scim-token, other-token"))  # fmt: skip


@check(*SUBSCRIBE)
def postdeploy_references_an_existing_topic_and_never_takes_over(tree: Tree) -> None:
    # the vault's topic exists (created by another environment), with its identity: only referenced
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show")
        cli.on(
            "eventgrid system-topic list", ok(topic_row("shared-topic", "rg-topics", VAULT_ID.upper(), owner="other"))
        )
        cli.on("eventgrid system-topic event-subscription show", fail("ERROR: (ResourceNotFound)"))
        cli.on("deployment group create", ok("{}"))
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        [show] = cli.calls("eventgrid system-topic event-subscription show")
        assert (show["--name"], show["--system-topic-name"], show["--resource-group"]) == (
            "psync-tok123",
            "shared-topic",
            "rg-topics",
        )
        [deployment] = cli.calls("deployment group create")
        assert deployment["--resource-group"] == "rg-topics"
        assert_deploys(tree, deployment, "infra/events.bicep", expected_event_parameters("shared-topic", "false"))
    # a subscription of this name that delivers to another function: refuse, deploy nothing
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show")
        cli.on("eventgrid system-topic list", ok(topic_row("shared-topic", "rg-topics", VAULT_ID)))
        cli.on(
            "eventgrid system-topic event-subscription show",
            ok(APP_ID.replace("tok123", "zzz999") + "/functions/keyvault_events\n"),
        )
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 2, cli)
        assert "refusing" in done.stderr and not cli.calls("deployment group create")
    # the same subscription already delivering here (a re-run): update it
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show")
        cli.on("eventgrid system-topic list", ok(topic_row("shared-topic", "rg-topics", VAULT_ID)))
        cli.on("eventgrid system-topic event-subscription show", ok(APP_ID.lower() + "/functions/keyvault_events\n"))
        cli.on("deployment group create", ok("{}"))
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        assert len(cli.calls("deployment group create")) == 1
    # an existing topic without a system-assigned identity: no dead-lettering, and say so
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show")
        cli.on("eventgrid system-topic list", ok(topic_row("shared-topic", "rg-topics", VAULT_ID, identity="None")))
        cli.on("eventgrid system-topic event-subscription show", fail("ERROR: (ResourceNotFound)"))
        cli.on("deployment group create", ok("{}"))
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        assert "not dead-lettered" in done.stderr and "--identity systemassigned" in done.stderr
        assert cli.calls("deployment group create")[0].parameters["enableDeadLetter"] == "false"


@check(*SUBSCRIBE)
def postdeploy_times_out_when_the_function_never_appears(tree: Tree) -> None:
    with fake_cli() as cli:
        cli.on("account show")
        cli.on("resource show", fail("ERROR: (ResourceNotFound)"))
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 1, cli)
        assert "not listed" in done.stderr
        assert len(cli.calls("resource show")) == 30 and cli.sleeps == [["10"]] * 29
        assert not cli.calls("deployment group create") and not cli.calls("eventgrid system-topic list")


@check(*SUBSCRIBE)
def postdeploy_needs_the_provision_outputs_and_a_signed_in_cli(tree: Tree) -> None:
    for missing in ("AZURE_FUNCTION_APP_ID", "KEY_VAULT_ID", "EVENT_SUBSCRIPTION_NAME", "STORAGE_ACCOUNT_ID"):
        with fake_cli() as cli:
            env = {k: v for k, v in PROVISIONED.items() if k != missing}
            done = cli.run(tree.root, "subscribe-keyvault-events.sh", env)
            assert done.returncode == 2 and missing in done.stderr and not cli.calls(), (missing, done.stderr)
    with fake_cli() as cli:
        cli.on("account show", fail("ERROR: Please run 'az login' to setup account."))
        done = cli.run(tree.root, "subscribe-keyvault-events.sh", PROVISIONED)
        assert_ran(done, 1, cli)
        assert "az login" in done.stderr and [c.command for c in cli.calls()] == ["account show"]


PREDOWN = ("infra/scripts/predown.sh", "infra/scripts/common.sh")


def predown_rules(cli: FakeCli, destination: str, owner: str, remaining: str) -> FakeCli:
    cli.on("account show")
    cli.on("eventgrid system-topic list", ok(topic_row("evgt-contoso-kv", "rg-secrets", VAULT_ID, owner=owner)))
    cli.on(
        "eventgrid system-topic event-subscription show",
        ok(destination + "\n") if destination else fail("ERROR: NotFound"),
    )
    cli.on("eventgrid system-topic event-subscription delete")
    cli.on("eventgrid system-topic event-subscription list", ok(remaining + "\n"))
    cli.on("eventgrid system-topic delete")
    cli.on("role assignment delete")
    return cli


@check(*PREDOWN)
def predown_removes_only_what_this_environment_created(tree: Tree) -> None:
    ours = f"{APP_ID}/functions/keyvault_events"
    # ours, on a topic this product created, nothing left on it: subscription, topic and vault role go
    with fake_cli() as cli:
        predown_rules(cli, ours, owner="tok123", remaining="0")
        done = cli.run(tree.root, "predown.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        [deleted] = cli.calls("eventgrid system-topic event-subscription delete")
        named = ("--name", "--system-topic-name", "--resource-group", "--subscription", "--yes")
        assert [deleted.get(n) for n in named] == ["psync-tok123", "evgt-contoso-kv", "rg-secrets", "sub-vault", True]
        [topic] = cli.calls("eventgrid system-topic delete")
        assert (topic["--name"], topic["--resource-group"], topic.get("--yes")) == (
            "evgt-contoso-kv",
            "rg-secrets",
            True,
        )
        [role] = cli.calls("role assignment delete")
        assert role["--ids"] == [PROVISIONED["KEY_VAULT_ROLE_ASSIGNMENT_ID"]]
    # someone else's subscription of the same name, on a topic someone else created and still uses
    with fake_cli() as cli:
        predown_rules(cli, APP_ID.replace("tok123", "zzz") + "/functions/keyvault_events", owner="", remaining="1")
        done = cli.run(tree.root, "predown.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        assert not cli.calls("eventgrid system-topic event-subscription delete")
        assert not cli.calls("eventgrid system-topic delete")
        assert len(cli.calls("role assignment delete")) == 1
    # ours, on a product-created topic another environment still uses: the topic stays
    with fake_cli() as cli:
        predown_rules(cli, ours, owner="tok123", remaining="2")
        done = cli.run(tree.root, "predown.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        assert len(cli.calls("eventgrid system-topic event-subscription delete")) == 1
        assert not cli.calls("eventgrid system-topic delete")
    # ours, on a topic this product did not create: the topic stays even when empty
    with fake_cli() as cli:
        predown_rules(cli, ours, owner="None", remaining="0")
        done = cli.run(tree.root, "predown.sh", PROVISIONED)
        assert_ran(done, 0, cli)
        assert not cli.calls("eventgrid system-topic delete")


@check(*PREDOWN)
def predown_can_be_skipped_and_needs_a_signed_in_cli(tree: Tree) -> None:
    with fake_cli() as cli:
        done = cli.run(tree.root, "predown.sh", {**PROVISIONED, "SYNC_PREDOWN_SKIP": "true"})
        assert done.returncode == 0 and not cli.calls(), done.stderr
    with fake_cli() as cli:
        done = cli.run(tree.root, "predown.sh", {"AZURE_SUBSCRIPTION_ID": "sub-app"})  # never provisioned
        assert done.returncode == 0 and not cli.calls(), done.stderr
    with fake_cli() as cli:
        cli.on("account show", fail("ERROR: Please run 'az login' to setup account."))
        done = cli.run(tree.root, "predown.sh", PROVISIONED)
        assert_ran(done, 1, cli)
        assert "az login" in done.stderr and [c.command for c in cli.calls()] == ["account show"]


# --- the PowerShell twins, statically (no pwsh here) ---------------------------------------------------------------

POWERSHELL = ("infra/scripts/*.ps1", "infra/scripts/*.sh")


def _code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def az_commands_sh(text: str) -> set[str]:
    commands = set()
    for line in _code(text).replace("\\\n", " ").splitlines():
        for match in re.finditer(r"\baz ((?:[a-z][a-z-]* ?)+)", line):
            commands.add(_command_path(match.group(1).split()))
    return commands - {""}


def az_commands_ps1(text: str) -> set[str]:
    commands = set()
    text = _code(text)
    for match in re.finditer(r"Invoke-Az \(?@\(((?:'[^']*',?\s*)+)", text):
        commands.add(_command_path(re.findall(r"'([^']*)'", match.group(1))))
    for match in re.finditer(r"\$arguments = @\(\s*((?:'[^']*',?\s*)+)", text):
        commands.add(_command_path(re.findall(r"'([^']*)'", match.group(1))))
    return commands - {""}


def _command_path(words: list[str]) -> str:
    from tests.infra.fake_az import COMMANDS

    for size in range(len(words), 0, -1):
        candidate = " ".join(words[:size])
        if candidate in COMMANDS:
            return candidate
    return ""


def deployment_parameter_names(text: str) -> set[str]:
    return set(re.findall(r'"([a-zA-Z]+)=\$', text)) | set(re.findall(r'"([a-zA-Z]+)=\$env:', text))


@check(*POWERSHELL)
def powershell_hooks_exit_with_the_documented_codes(tree: Tree) -> None:
    """Statically: no Write-Error under Stop (it throws: exit 1), usage errors exit 2, az failures checked."""
    problems = []
    for script in sorted(tree.path("infra/scripts").glob("*.ps1")):
        text = script.read_text(encoding="utf-8")
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        name = script.name
        if name != "common.ps1" and "$ErrorActionPreference = 'Stop'" not in code:
            problems.append(f"{name}: $ErrorActionPreference = 'Stop'")
        if re.search(r"\bWrite-Error\b", code):
            problems.append(f"{name}: Write-Error throws under $ErrorActionPreference='Stop' (exit 1): use Stop-Hook")
        for variable in re.findall(r"\$([A-Za-z_]+):(?!:)", code):
            if variable.lower() != "env":  # "$name:" reads the variable "name:" (a drive scope), not $name
                problems.append(f'{name}: "${variable}:" in a string: write ${{{variable}}}:')
        if re.search(r"\bthrow\b", code):
            problems.append(f"{name}: throw ends the hook with exit code 1: use Stop-Hook")
        for exit_code in re.findall(r"\bexit (\S+)", code):
            if exit_code not in ("0", "1", "$Code", "$LASTEXITCODE"):
                problems.append(f"{name}: exit {exit_code}: only 0, 1, 2 (via Stop-Hook) are documented")
        for stop in re.findall(r"Stop-Hook (\d+) \"(usage|[A-Za-z_ ]*must be|[A-Z_]+ is not set|Via )", code):
            if stop[0] != "2":
                problems.append(f'{name}: a usage error must exit 2: Stop-Hook {stop[0]} "{stop[1]}...')
        for stop in re.findall(r"Stop-Hook (\d+)", code):
            if stop not in ("1", "2"):
                problems.append(f"{name}: Stop-Hook {stop}")
        if name != "common.ps1":
            if "common.ps1" not in code:
                problems.append(f"{name}: dot-source common.ps1 for Stop-Hook and Invoke-Az")
            for native in re.findall(r"^\s*& az @\w+", code, re.M):
                after = (code.split(native, 1)[1].strip().splitlines() or [""])[0]
                if "$LASTEXITCODE" not in after:
                    problems.append(f"{name}: check $LASTEXITCODE right after `{native.strip()}`")
    common = tree.text("infra/scripts/common.ps1")
    if not re.search(
        r"function Stop-Hook\(\[int\]\$Code, \[string\]\$Message\) \{\s*"
        r"\[Console\]::Error\.WriteLine\(\$Message\)\s*exit \$Code",
        common,
    ):
        problems.append("common.ps1: Stop-Hook writes to stderr with [Console]::Error and exits with $Code")
    fails(problems)


@check(*POWERSHELL)
def powershell_hooks_do_what_the_shell_hooks_do(tree: Tree) -> None:
    """Statically: the same az commands, the same deployment parameters, the same settings read."""
    problems = []
    for ps1 in sorted(tree.path("infra/scripts").glob("*.ps1")):
        sh = ps1.with_suffix(".sh")
        if not sh.is_file():
            problems.append(f"{ps1.name} has no {sh.name} twin")
            continue
        ps1_text, sh_text = ps1.read_text(encoding="utf-8"), sh.read_text(encoding="utf-8")
        if az_commands_ps1(ps1_text) != az_commands_sh(sh_text):
            problems.append(
                f"{ps1.name} runs az {sorted(az_commands_ps1(ps1_text))}, {sh.name} {sorted(az_commands_sh(sh_text))}"
            )
        if deployment_parameter_names(ps1_text) != deployment_parameter_names(sh_text):
            problems.append(f"{ps1.name} passes {sorted(deployment_parameter_names(ps1_text))}, "
                            f"{sh.name} {sorted(deployment_parameter_names(sh_text))}")  # fmt: skip
        ps1_vars = variables_read(ps1_text)
        sh_vars = variables_read(sh_text)
        if ps1_vars != sh_vars and ps1.name != "grant-graph-permission.ps1":
            problems.append(f"{ps1.name} reads {sorted(ps1_vars ^ sh_vars)} that {sh.name} does not, or the reverse")
    for sh in sorted(tree.path("infra/scripts").glob("*.sh")):
        if not sh.with_suffix(".ps1").is_file():
            problems.append(f"{sh.name} has no PowerShell twin for Windows")
    fails(problems)


# --- the docs say what the templates do ----------------------------------------------------------------------------

DOCS = "docs/operations.md"


@check(DOCS, "README.md", *BICEP, "function_app.py")
def docs_cover_the_ledger_dead_letters_cleanup_and_rights(tree: Tree) -> None:
    docs, readme = tree.text(DOCS), tree.text("README.md")
    problems = []
    required = {
        "the ledger container": f"`{tables.LEDGER_CONTAINER}`",
        "the dead-letter container": f"`{tables.DEAD_LETTER_CONTAINER}`",
        "the host's storage role": "Storage Blob Data Owner",
        "the topic's dead-letter role": "Storage Blob Data Contributor",
        "replay through the webhook": "POST /api/sync",
        "the reconcile timer catching up": "reconcile timer catch up",
        "the upper-case dead-letter path": "PSYNC-<RESOURCE_TOKEN>",
        "the minimum azd": "1.24.1",
        "what predown removes": "predown",
        "what azd down leaves": "**left**",
        "the Graph grant's directory role": "Privileged Role Administrator",
        "the right to create Event Grid topics in the vault's group": "Microsoft.EventGrid/systemTopics/write",
        "the replication race": "msgraph-bicep-types #193",
        "redeploying the app role assignment": "msgraph-bicep-types #161",
        "the OwnedBy trade-off": "Application.ReadWrite.OwnedBy",
        "no queue role": "No queue or table role",
        "two environments on one vault": "## Two environments, one vault",
    }
    problems += [
        f"docs/operations.md must cover {what} ({text!r})" for what, text in required.items() if text not in docs
    ]
    diagram = docs.split("```mermaid", 1)[1].split("```", 1)[0] if "```mermaid" in docs else ""
    functions = set(re.findall(r'@app\.function_name\("([^"]+)"\)', tree.text("function_app.py")))
    shown = ["POST /api/sync", "validateCredentials", "Key Vault", "Managed identity", tables.LEDGER_CONTAINER]
    for name in [*sorted(functions), *shown, tables.DEAD_LETTER_CONTAINER, "SYNC_RECONCILE_SCHEDULE"]:
        if name not in diagram:
            problems.append(f"the docs/operations.md diagram must show {name}")
    for text in ("Not a valid reference update", "requiredVersions", "GRAPH_APP_ROLE", "EventGrid Contributor"):
        if text not in readme:
            problems.append(f"README.md (Permissions / Deploy / Troubleshooting) must mention {text!r}")
    settings_docs = docs.split("## App settings", 1)[-1]
    for name in sorted(settings_the_code_reads(tree)):
        if name.startswith("SYNC_") and f"`{name}`" not in settings_docs:
            problems.append(f"app setting {name} is missing from docs/operations.md's App settings")
    main = tree.template(MAIN)
    for output in main.outputs:
        if output not in ("AZURE_LOCATION", "AZURE_TENANT_ID", "KEY_VAULT_NAME", "KEY_VAULT_RESOURCE_GROUP",
                          "KEY_VAULT_SUBSCRIPTION_ID") and f"`{output}`" not in docs:  # fmt: skip
            problems.append(f"output {output} is not documented in docs/operations.md")
    fails(problems)
