"""The Bicep templates as data: parsed by a real Bicep parser (pycep-parser), then wrapped for the checks.

pycep turns a ``.bicep`` file into nested dicts. A string that is a *reference* (``principalId``) and a string
that is a *literal* (``'principalId'``) look the same in that JSON, but pycep types references as
``BicepElement`` (a ``str`` subclass): ``is_ref`` tells them apart, which is what lets the checks say "the
client id is passed where the principal id belongs". ``Evaluator`` computes expressions the checks need
(names per environment, the effective Graph grant mode) for given parameter values; it knows the functions
these templates use and refuses anything else instead of guessing.

Two pycep limits matter (both checked by ``precedence_problems``): quoted object keys keep their quotes
(``normalize`` strips them), and ``!a ? b : c`` / ``a == b ? c : d`` parse with the wrong precedence, so
conditions in our templates are parenthesized.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pycep import BicepParser
from pycep.models import BicepElement

_PARSER: BicepParser | None = None


def parser() -> BicepParser:
    global _PARSER
    if _PARSER is None:
        _PARSER = BicepParser()
    return _PARSER


def is_ref(value: Any) -> bool:
    """A bare identifier in the source (a parameter, variable, resource, module or lambda variable)."""
    return isinstance(value, BicepElement)


def is_literal_string(value: Any) -> bool:
    return isinstance(value, str) and not is_ref(value) and "${" not in value


def normalize(value: Any) -> Any:
    """Strip pycep's quotes from object keys (``'azd-service-name'``), recursively; keep reference types."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if isinstance(key, str) and len(key) >= 2 and key[0] == key[-1] == "'":
                key = key[1:-1]
            result[key] = normalize(item)
        return result
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


@dataclass
class Param:
    name: str
    type: str
    default: Any
    has_default: bool
    decorators: dict[str, Any]

    @property
    def allowed(self) -> list[Any] | None:
        return self.decorators.get("allowed")


@dataclass
class Resource:
    symbol: str
    type: str
    api_version: str
    existing: bool
    condition: Any
    body: dict[str, Any]

    @property
    def type_ref(self) -> str:
        return f"{self.type}@{self.api_version}"

    def get(self, *path: str) -> Any:
        """A nested value of the body, or None."""
        node: Any = self.body
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node


@dataclass
class Module:
    symbol: str
    source: str
    path: Path
    condition: Any
    body: dict[str, Any]

    @property
    def params(self) -> dict[str, Any]:
        return self.body.get("params", {}) or {}


@dataclass
class Output:
    name: str
    type: str
    value: Any


@dataclass
class Template:
    path: Path
    target_scope: str
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    modules: dict[str, Module] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def resources_of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type.lower() == type_.lower()]

    @property
    def symbols(self) -> set[str]:
        return set(self.params) | set(self.variables) | set(self.resources) | set(self.modules)


def _unwrap(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """pycep nests a conditional resource's body under ``config`` next to ``condition``."""
    if "condition" in config and "config" in config and len(config) == 2:
        return config["condition"], config["config"]
    return None, config


def parse_text(text: str, path: Path) -> Template:
    raw = parser().parse(text=text)
    target_scope = (raw.get("globals", {}).get("scope") or {}).get("value") or "resourceGroup"
    template = Template(path=path, target_scope=str(target_scope), raw=raw)
    for name, spec in (raw.get("parameters") or {}).items():
        decorators = {d["type"]: d.get("argument") for d in spec.get("decorators") or []}
        has_default = "default" in spec and spec["default"] is not None
        template.params[name] = Param(
            name, str(spec.get("type")), normalize(spec.get("default")), has_default, decorators
        )
    for name, spec in (raw.get("variables") or {}).items():
        template.variables[name] = normalize(spec.get("value"))
    for name, spec in (raw.get("resources") or {}).items():
        condition, body = _unwrap(spec.get("config") or {})
        template.resources[name] = Resource(
            name, spec["type"], spec["api_version"], bool(spec.get("existing")), condition, normalize(body)
        )
    for name, spec in (raw.get("modules") or {}).items():
        condition, body = _unwrap(spec.get("config") or {})
        source = spec.get("detail", {}).get("path") or spec.get("detail", {}).get("full") or ""
        template.modules[name] = Module(name, source, (path.parent / source).resolve(), condition, normalize(body))
    for name, spec in (raw.get("outputs") or {}).items():
        template.outputs[name] = Output(name, str(spec.get("type")), normalize(spec.get("value")))
    extensions = raw.get("extensions") or {}
    template.extensions = list(extensions) if isinstance(extensions, dict) else [str(e) for e in extensions]
    return template


@lru_cache(maxsize=256)
def _parse_cached(path: str, text: str) -> Template:
    return parse_text(text, Path(path))


def load(path: Path) -> Template:
    """Parse one file (cached by content, so a mutated copy is parsed afresh)."""
    return _parse_cached(str(path.resolve()), path.read_text(encoding="utf-8"))


def module_closure(path: Path) -> list[Template]:
    """A template and every module it references, transitively."""
    seen: dict[Path, Template] = {}
    pending = [path.resolve()]
    while pending:
        current = pending.pop()
        if current in seen or not current.is_file():
            continue
        seen[current] = load(current)
        pending.extend(m.path for m in seen[current].modules.values())
    return list(seen.values())


# --- walking expressions ----------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{((?:[^{}']|'[^']*'|\{[^{}]*\})*)\}")


@lru_cache(maxsize=1024)
def parse_expression(source: str) -> Any:
    """An expression's tree, parsed by pycep as the value of a variable."""
    return normalize(parser().parse(text=f"var x = {source}\n")["variables"]["x"]["value"])


def interpolations(text: str) -> list[Any]:
    return [parse_expression(m.group(1)) for m in _INTERPOLATION.finditer(text)]


def walk(node: Any):
    """Every sub-node of an expression tree, interpolations included."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
    elif isinstance(node, str) and not is_ref(node) and "${" in node:
        for inner in interpolations(node):
            yield from walk(inner)


def root_symbol(node: Any) -> str | None:
    """The symbol an accessor chain starts from: ``identity`` in ``identity.outputs.principalId``."""
    while isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        if operator["type"] not in ("property_accessor", "index_accessor"):
            return None
        node = operator["operands"]["operand_1"]
    return str(node) if is_ref(node) else None


def accessor_path(node: Any) -> list[str]:
    """``identity.outputs.principalId`` -> ['identity', 'outputs', 'principalId'] (literal indexes included)."""
    if is_ref(node):
        return [str(node)]
    if isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        if operator["type"] == "property_accessor":
            return accessor_path(operator["operands"]["operand_1"]) + accessor_path(operator["operands"]["operand_2"])
        if operator["type"] == "index_accessor":
            index = operator["operands"]["operand_2"]
            return [*accessor_path(operator["operands"]["operand_1"]), str(index)]
    if isinstance(node, (str, int)):
        return [str(node)]
    return ["?"]


def references(node: Any) -> set[str]:
    """Symbols an expression uses (the first name of each accessor chain, lambda variables excluded)."""
    found: set[str] = set()
    _references(node, found, frozenset())
    return found


def _references(node: Any, found: set[str], bound: frozenset[str]) -> None:
    if is_ref(node):
        if str(node) not in bound:
            found.add(str(node))
        return
    if isinstance(node, str):
        if "${" in node:
            for inner in interpolations(node):
                _references(inner, found, bound)
        return
    if isinstance(node, list):
        for item in node:
            _references(item, found, bound)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "lambda_expression":
        detail = node["detail"]
        names = {str(v) for k, v in detail.items() if k.startswith("var_")}
        _references(detail.get("expression"), found, bound | names)
        return
    if "operator" in node and isinstance(node["operator"], dict):
        operator = node["operator"]
        operands = operator.get("operands", {})
        if operator.get("type") == "property_accessor":
            _references(operands.get("operand_1"), found, bound)
            second = operands.get("operand_2")
            if isinstance(second, dict):  # a chain or an operator applied to the member
                _member_references(second, found, bound)
            return
        if operator.get("type") == "index_accessor":
            _references(operands.get("operand_1"), found, bound)
            _references(operands.get("operand_2"), found, bound)
            return
        _references(operands, found, bound)
        return
    if "function" in node and isinstance(node["function"], dict):
        _references(node["function"].get("parameters"), found, bound)
        return
    for key, value in node.items():
        if isinstance(key, str) and key.startswith("${"):
            _references(key, found, bound)
        _references(value, found, bound)


def _member_references(node: dict[str, Any], found: set[str], bound: frozenset[str]) -> None:
    """The right side of ``a.b...``: member names are not symbols, but operands beyond the first are."""
    operator = node.get("operator")
    if not isinstance(operator, dict):
        _references(node, found, bound)
        return
    operands = operator.get("operands", {})
    if operator.get("type") == "property_accessor":
        second = operands.get("operand_2")
        if isinstance(second, dict):
            _member_references(second, found, bound)
        return
    for key, value in operands.items():
        if key != "operand_1":
            _references(value, found, bound)


def precedence_problems(template: Template) -> list[str]:
    """Shapes pycep produces only when it mis-parses an unparenthesized condition (see module docstring)."""
    problems = []
    for node in walk(template.raw):
        if not isinstance(node, dict) or "operator" not in node or not isinstance(node["operator"], dict):
            continue
        operator = node["operator"]
        operands = operator.get("operands", {})
        inner = operands.get("bool_value") if operator.get("type") == "not" else operands.get("operand_2")
        swallowed = isinstance(inner, dict) and (inner.get("operator") or {}).get("type") == "conditional"
        if operator.get("type") in ("not", "equals", "not_equals") and swallowed:
            problems.append(f"{template.path.name}: '{operator['type']}' swallows a '?:' - parenthesize the condition")
    return problems


# --- evaluating expressions ---------------------------------------------------------------------------------


class Unevaluable(Exception):
    """The expression needs something only Azure knows at deployment time, or a function not modelled here."""


def unique_string(*parts: str) -> str:
    """Stands in for Bicep's uniqueString: 13 lowercase characters, equal inputs give equal outputs."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return "".join(chr(ord("a") + int(c, 16) % 26) if c.isalpha() else c for c in digest[:13])


@dataclass
class Context:
    """What ``subscription()``, ``tenant()`` and ``resourceGroup()`` return while evaluating."""

    subscription_id: str = "00000000-0000-0000-0000-00000000aaaa"
    tenant_id: str = "00000000-0000-0000-0000-00000000bbbb"
    resource_group: str = "rg-deploy"


class Evaluator:
    """Evaluates one template's expressions for given parameter values."""

    def __init__(self, template: Template, params: dict[str, Any], context: Context | None = None) -> None:
        self.template = template
        self.context = context or Context()
        self.values: dict[str, Any] = {}
        for name, param in template.params.items():
            if name in params:
                self.values[name] = params[name]
            elif param.has_default:
                self.values[name] = None  # evaluated lazily: defaults may use functions
        unknown = set(params) - set(template.params)
        if unknown:
            raise KeyError(f"{template.path.name} has no parameters {sorted(unknown)}")
        self._explicit = set(params)
        self._evaluating: set[str] = set()

    def symbol(self, name: str) -> Any:
        if name in self.template.params:
            if name in self._explicit:
                return self.values[name]
            if not self.template.params[name].has_default:
                raise Unevaluable(f"parameter {name} has no value")
            return self.eval(self.template.params[name].default)
        if name in self.template.variables:
            if name in self._evaluating:
                raise Unevaluable(f"variable {name} refers to itself")
            self._evaluating.add(name)
            try:
                return self.eval(self.template.variables[name])
            finally:
                self._evaluating.discard(name)
        raise Unevaluable(f"{name} is known only at deployment time")

    def output(self, name: str) -> Any:
        return self.eval(self.template.outputs[name].value)

    def eval(self, node: Any, scope: dict[str, Any] | None = None) -> Any:
        scope = scope or {}
        if is_ref(node):
            if str(node) in scope:
                return scope[str(node)]
            return self.symbol(str(node))
        if isinstance(node, str):
            if "${" not in node:
                return node
            return _INTERPOLATION.sub(lambda m: str(self.eval(parse_expression(m.group(1)), scope)), node)
        if node is None or isinstance(node, (bool, int, float)):
            return node
        if isinstance(node, list):
            return [self.eval(item, scope) for item in node]
        if isinstance(node, dict):
            if "operator" in node and isinstance(node["operator"], dict):
                return self._operator(node["operator"], scope)
            if "function" in node and isinstance(node["function"], dict):
                return self._function(node["function"], scope)
            if node.get("type") == "lambda_expression":
                return node
            return {self.eval(k, scope) if "${" in str(k) else k: self.eval(v, scope) for k, v in node.items()}
        raise Unevaluable(f"cannot evaluate {node!r}")

    def _operator(self, operator: dict[str, Any], scope: dict[str, Any]) -> Any:
        kind, operands = operator["type"], operator.get("operands", {})
        if kind == "conditional":
            condition = self.eval(operands["condition"], scope)
            return self.eval(operands["true_value"] if condition else operands["false_value"], scope)
        if kind in ("equals", "not_equals"):
            left, right = self.eval(operands["operand_1"], scope), self.eval(operands["operand_2"], scope)
            return (left == right) == (kind == "equals")
        if kind == "not":
            return not self.eval(operands["bool_value"], scope)
        if kind == "and":
            return bool(self.eval(operands["operand_1"], scope)) and bool(self.eval(operands["operand_2"], scope))
        if kind == "or":
            return bool(self.eval(operands["operand_1"], scope)) or bool(self.eval(operands["operand_2"], scope))
        if kind == "property_accessor":
            base = self.eval(operands["operand_1"], scope)
            return self._member(base, operands["operand_2"], scope)
        if kind == "index_accessor":
            base = self.eval(operands["operand_1"], scope)
            index = self.eval(operands["operand_2"], scope)
            try:
                return base[index]
            except (KeyError, IndexError, TypeError) as error:
                raise Unevaluable(f"index {index!r} not in {base!r}") from error
        raise Unevaluable(f"operator {kind} is not modelled")

    def _member(self, base: Any, member: Any, scope: dict[str, Any]) -> Any:
        if is_ref(member) or isinstance(member, str):
            if isinstance(base, dict) and str(member) in base:
                return base[str(member)]
            raise Unevaluable(f"{member} of {base!r}")
        if isinstance(member, dict) and "operator" in member:
            operator = member["operator"]
            if operator["type"] == "property_accessor":
                first = self._member(base, operator["operands"]["operand_1"], scope)
                return self._member(first, operator["operands"]["operand_2"], scope)
        raise Unevaluable(f"member {member!r}")

    def _function(self, function: dict[str, Any], scope: dict[str, Any]) -> Any:
        kind = function["type"]
        args = [self.eval(v, scope) for v in (function.get("parameters") or {}).values() if v is not None]
        if kind == "empty":
            return not args[0]
        if kind == "to_lower":
            return str(args[0]).lower()
        if kind == "unique_string":
            return unique_string(*[str(a) for a in args])
        if kind == "take":
            return args[0][: args[1]]
        if kind == "trim":
            return str(args[0]).strip()
        if kind == "split":
            return str(args[0]).split(args[1])
        if kind == "last":
            return args[0][-1]
        if kind == "union":
            merged: dict[str, Any] = {}
            for arg in args:
                merged.update(arg)
            return merged
        if kind == "subscription":
            return {
                "id": f"/subscriptions/{self.context.subscription_id}",
                "subscriptionId": self.context.subscription_id,
            }
        if kind == "tenant":
            return {"tenantId": self.context.tenant_id}
        if kind == "resource_group" and not args:
            return {"name": self.context.resource_group}
        raise Unevaluable(f"function {kind} is not modelled")
