"""Rebuild arm-types.json: the resource types our templates use, as Bicep itself knows them.

Bicep type-checks templates against the types generated into Azure/bicep-types-az (Azure resources) and
microsoftgraph/msgraph-bicep-types (the Microsoft Graph extension). This script copies, for every
``type@apiVersion`` the templates under infra/ use, that type's definition (properties, flags such as
Required and ReadOnly, allowed literal values, discriminated objects, readable and writable scopes) with
everything it references, plus the list of every API version that exists for the type. The tests then check
the templates against it, offline: an API version that does not exist, a misspelt or invented property, a
missing required one, a value outside an enum, or a scope the type cannot be deployed at all fail.

Run it after changing an API version in infra/ (it needs both repositories checked out; bare clones work):

    python tests/infra/schemas/regenerate.py --azure ../bicep-types-az --graph ../msgraph-bicep-types
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.infra.bicep import load  # noqa: E402 - needs ROOT on sys.path

OUT = Path(__file__).with_name("arm-types.json")
GRAPH_TYPES = "generated/microsoftgraph/microsoft.graph/v1.0/1.0.0/types.json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def used_types() -> set[str]:
    found = set()
    for path in sorted((ROOT / "infra").rglob("*.bicep")):
        found |= {r.type_ref for r in load(path).resources.values()}
    return found


def reachable(types: list[dict], start: int) -> dict[int, dict]:
    """The types a definition references, transitively (by index into types.json)."""
    keep: dict[int, dict] = {}
    pending = [start]
    while pending:
        index = pending.pop()
        if index in keep:
            continue
        keep[index] = types[index]
        for ref in re.findall(r'"\$ref": "#/(\d+)"', json.dumps(types[index])):
            pending.append(int(ref))
    return keep


def extract(types: list[dict], resource_index: int) -> dict:
    """One resource type with its reachable types renumbered from 0 (the resource itself first)."""
    keep = reachable(types, resource_index)
    order = [resource_index, *sorted(i for i in keep if i != resource_index)]
    renumber = {old: new for new, old in enumerate(order)}
    text = json.dumps([keep[i] for i in order])
    text = re.sub(r'"\$ref": "#/(\d+)"', lambda m: f'"$ref": "#/{renumber[int(m.group(1))]}"', text)
    return {"types": json.loads(text)}


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--azure", type=Path, required=True, help="checkout of Azure/bicep-types-az")
    arguments.add_argument("--graph", type=Path, required=True, help="checkout of microsoftgraph/msgraph-bicep-types")
    options = arguments.parse_args()

    wanted = used_types()
    azure_files = [f for f in git(options.azure, "ls-tree", "-r", "--name-only", "HEAD", "generated").splitlines()
                   if f.endswith("/types.json")]  # fmt: skip
    result: dict = {
        "source": {
            "Azure/bicep-types-az": git(options.azure, "rev-parse", "HEAD").strip(),
            "microsoftgraph/msgraph-bicep-types": git(options.graph, "rev-parse", "HEAD").strip(),
            "graphTypes": GRAPH_TYPES,
        },
        "apiVersions": {},
        "resources": {},
    }
    for type_ref in sorted(wanted):
        type_name = type_ref.split("@")[0]
        namespace = type_name.split("/")[0].lower()
        if namespace == "microsoft.graph":
            candidates, repo = [GRAPH_TYPES], options.graph
        else:
            candidates, repo = [f for f in azure_files if f"/{namespace}/" in f.lower()], options.azure
        versions: set[str] = set()
        for file in candidates:
            text = git(repo, "show", f"HEAD:{file}")
            if f'"name": "{type_name}@' not in text and f'"name": "{type_name.lower()}@' not in text.lower():
                continue
            types = json.loads(text)
            for index, item in enumerate(types):
                if item.get("$type") == "ResourceType" and item["name"].lower().startswith(type_name.lower() + "@"):
                    versions.add(item["name"].split("@")[1])
                    if item["name"].lower() == type_ref.lower() and type_ref not in result["resources"]:
                        result["resources"][type_ref] = extract(types, index) | {"file": file}
        result["apiVersions"][type_name] = sorted(versions)
        if type_ref not in result["resources"]:
            print(f"not found: {type_ref}", file=sys.stderr)
    OUT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(result['resources'])} resource types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
