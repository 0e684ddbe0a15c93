"""Resource bodies checked against the types Bicep itself compiles against (schemas/arm-types.json).

What is checked where the template has a literal: unknown property names (the nearest Bicep gives is a
warning, BCP037: a misspelt ``functionAppConfig`` deploys as nothing), missing required properties, read-only
properties set, literal values outside an enum, integers out of range, discriminated objects with an unknown
discriminator. Expressions (references, functions, interpolations) are skipped: their type is Azure's to
know. Scopes: a resource may only be deployed (or, when ``existing``, read) at a scope its type allows.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.infra.bicep import Resource, Template, is_literal_string, is_ref

SCHEMAS = Path(__file__).with_name("schemas") / "arm-types.json"

# bicep-types flags and scope bits
REQUIRED, READ_ONLY = 1, 2
SCOPES = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8, "extension": 16}
# Keys Bicep itself handles on a resource declaration, not part of the resource type.
BICEP_KEYS = {"scope", "parent", "dependsOn"}


@cache
def catalog() -> dict[str, Any]:
    return json.loads(SCHEMAS.read_text(encoding="utf-8"))


def known_api_versions(type_name: str) -> list[str]:
    versions = catalog()["apiVersions"]
    for name, listed in versions.items():
        if name.lower() == type_name.lower():
            return listed
    return []


class TypeSet:
    """One resource type's definitions (index 0 is the ResourceType)."""

    def __init__(self, type_ref: str) -> None:
        resources = {k.lower(): v for k, v in catalog()["resources"].items()}
        if type_ref.lower() not in resources:
            type_name, _, version = type_ref.partition("@")
            known = known_api_versions(type_name)
            if known and version not in known:
                raise LookupError(f"{type_ref}: API version {version} does not exist (known: {', '.join(known)})")
            raise LookupError(
                f"{type_ref} is not in {SCHEMAS.name}: a type or API version no Bicep types define, or run "
                "tests/infra/schemas/regenerate.py after changing it"
            )
        self.types: list[dict[str, Any]] = resources[type_ref.lower()]["types"]
        self.resource = self.types[0]

    def get(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.types[int(ref["$ref"].split("/")[-1])]

    @property
    def body(self) -> dict[str, Any]:
        return self.get(self.resource["body"])

    def scopes(self, writable: bool) -> int | None:
        key = "writableScopes" if writable else "readableScopes"
        value = self.resource.get(key, self.resource.get("scopeType"))
        return None if value is None else int(value)


def _literal_values(types: TypeSet, node: dict[str, Any]) -> list[Any] | None:
    """The allowed literal values of a string type, or None if any string is allowed."""
    kind = node["$type"]
    if kind == "StringLiteralType":
        return [node["value"]]
    if kind == "UnionType":
        values: list[Any] = []
        for element in node["elements"]:
            inner = _literal_values(types, types.get(element))
            if inner is None:
                return None
            values.extend(inner)
        return values
    return None


def check_value(types: TypeSet, node: dict[str, Any], value: Any, where: str, problems: list[str]) -> None:
    kind = node["$type"]
    if isinstance(value, dict) and set(value) == {"operator"} and value["operator"].get("type") == "conditional":
        operands = value["operator"]["operands"]
        for branch in ("true_value", "false_value"):
            if operands.get(branch) is not None:
                check_value(types, node, operands[branch], where, problems)
        return
    if is_ref(value) or (isinstance(value, dict) and ("operator" in value or "function" in value)):
        return  # an expression: its type is known only at deployment
    if isinstance(value, str) and not is_literal_string(value):
        return  # an interpolation
    if kind in ("AnyType",):
        return
    if kind == "UnionType":
        literals = _literal_values(types, node)
        if literals is not None:
            if value not in literals:
                problems.append(f"{where}: {value!r} is not one of {literals}")
            return
        errors_per_branch = []
        for element in node["elements"]:
            branch: list[str] = []
            check_value(types, types.get(element), value, where, branch)
            if not branch:
                return
            errors_per_branch.append(branch)
        problems.extend(min(errors_per_branch, key=len))
        return
    if kind == "StringLiteralType":
        if value != node["value"]:
            problems.append(f"{where}: {value!r} must be {node['value']!r}")
        return
    if kind == "StringType":
        if not isinstance(value, str):
            problems.append(f"{where}: expected a string, got {value!r}")
        return
    if kind == "IntegerType":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: expected an integer, got {value!r}")
        elif ("minValue" in node and value < node["minValue"]) or ("maxValue" in node and value > node["maxValue"]):
            problems.append(f"{where}: {value} is outside {node.get('minValue')}..{node.get('maxValue')}")
        return
    if kind == "BooleanType":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
        return
    if kind == "ArrayType":
        if not isinstance(value, list):
            problems.append(f"{where}: expected an array, got {value!r}")
            return
        item_type = types.get(node["itemType"])
        for index, item in enumerate(value):
            check_value(types, item_type, item, f"{where}[{index}]", problems)
        return
    if kind == "ObjectType":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {value!r}")
            return
        check_object(types, node.get("properties", {}), node.get("additionalProperties"), value, where, problems)
        return
    if kind == "DiscriminatedObjectType":
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {value!r}")
            return
        key = node["discriminator"]
        chosen = value.get(key)
        if not is_literal_string(chosen):
            return  # chosen at deployment time
        if chosen not in node["elements"]:
            problems.append(f"{where}.{key}: {chosen!r} is not one of {sorted(node['elements'])}")
            return
        element = types.get(node["elements"][chosen])
        properties = {**node.get("baseProperties", {}), **element.get("properties", {})}
        check_object(types, properties, element.get("additionalProperties"), value, where, problems)
        return
    if kind in ("ResourceType",):
        check_value(types, types.get(node["body"]), value, where, problems)
        return


def check_object(
    types: TypeSet,
    properties: dict[str, Any],
    additional: dict[str, str] | None,
    value: dict[str, Any],
    where: str,
    problems: list[str],
    skip: frozenset[str] = frozenset(),
) -> None:
    lowered = {name.lower(): name for name in properties}
    for key, item in value.items():
        if key in skip:
            continue
        if not isinstance(key, str) or "${" in key:
            if additional is not None:
                check_value(types, types.get(additional), item, f"{where}[{key}]", problems)
            continue
        name = lowered.get(key.lower())
        if name is None:
            if additional is None:
                problems.append(f"{where}: unknown property {key!r} (known: {', '.join(sorted(properties))})")
            else:
                check_value(types, types.get(additional), item, f"{where}.{key}", problems)
            continue
        if name != key:
            problems.append(f"{where}: property {key!r} is spelt {name!r}")
        spec = properties[name]
        flags = int(spec.get("flags", 0))
        if flags & READ_ONLY and not flags & REQUIRED:
            problems.append(f"{where}: {key!r} is read-only")
            continue
        check_value(types, types.get(spec["type"]), item, f"{where}.{key}", problems)
    for name, spec in properties.items():
        flags = int(spec.get("flags", 0))
        if flags & REQUIRED and not flags & READ_ONLY and name not in value and name not in skip:
            problems.append(f"{where}: required property {name!r} is missing")


def check_resource(template: Template, resource: Resource) -> list[str]:
    """Problems with one resource declaration (an unknown type@version is one problem)."""
    where = f"{template.path.name}:{resource.symbol}"
    try:
        types = TypeSet(resource.type_ref)
    except LookupError as error:
        return [f"{where}: {error}"]
    problems: list[str] = []
    body = types.body
    if resource.existing:
        # An existing reference names the resource; nothing else may be set.
        allowed = {"name", "scope", "parent"} | _identifier_properties(types, body)
        for key in resource.body:
            if key not in allowed:
                problems.append(f"{where}: {key!r} cannot be set on an existing resource")
        return problems
    check_value_top(types, body, resource.body, where, problems)
    return problems


def _identifier_properties(types: TypeSet, body: dict[str, Any]) -> set[str]:
    """Graph resources are named by an identifier property (appId, uniqueName) instead of ``name``."""
    properties = body.get("properties", {}) if body["$type"] == "ObjectType" else {}
    return {name for name, spec in properties.items() if int(spec.get("flags", 0)) & 16}


def check_value_top(
    types: TypeSet, body: dict[str, Any], value: dict[str, Any], where: str, problems: list[str]
) -> None:
    skip = frozenset(BICEP_KEYS)
    if body["$type"] == "ObjectType":
        check_object(types, body.get("properties", {}), body.get("additionalProperties"), value, where, problems, skip)
    elif body["$type"] == "DiscriminatedObjectType":
        stripped = {k: v for k, v in value.items() if k not in skip}
        check_value(types, body, stripped, where, problems)
    else:
        problems.append(f"{where}: unexpected body type {body['$type']}")


def deployment_scope(template: Template, resource: Resource) -> str:
    """Where a resource is deployed: the file's target scope, a parent's, or a ``scope:`` resource (extension)."""
    scope = resource.body.get("scope")
    if scope is None:
        parent = resource.body.get("parent")
        if is_ref(parent) and str(parent) in template.resources:
            return deployment_scope(template, template.resources[str(parent)])
        return template.target_scope
    if is_ref(scope) and str(scope) in template.resources:
        return "extension"
    if isinstance(scope, dict) and "function" in scope:
        kind = scope["function"]["type"]
        return {"resource_group": "resourceGroup", "subscription": "subscription", "tenant": "tenant"}.get(kind, kind)
    return "unknown"


def scope_problems(template: Template, resource: Resource) -> list[str]:
    try:
        types = TypeSet(resource.type_ref)
    except LookupError:
        return []  # reported by check_resource
    allowed = types.scopes(writable=not resource.existing)
    if allowed is None or (allowed == 0 and "scopeType" in types.resource):
        return []  # extension types (Microsoft Graph): scopeType 0 is "any scope"
    scope = deployment_scope(template, resource)
    if not allowed & SCOPES.get(scope, 0):
        names = [name for name, bit in SCOPES.items() if allowed & bit]
        verb = "read" if resource.existing else "deployed"
        return [f"{template.path.name}:{resource.symbol}: {resource.type} cannot be {verb} at {scope} scope ({names})"]
    return []
