"""``shared/`` is layered: a package never imports one above it, so each layer can be read, tested and
replaced on its own. The order is the folders' order in the README's "Code layout"."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parent.parent / "shared"
#: Lowest first. ``cli`` and the triggers are the two tops; nothing imports them but ``__main__``.
LAYERS = ("core", "clients", "ledger", "sync", "triggers", "cli")


def _imports(path: Path) -> list[tuple[str, int]]:
    """Packages of ``shared`` this module imports (relative or absolute), with line numbers."""
    package = path.relative_to(SHARED).parts[0] if path.parent != SHARED else ""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.startswith("shared."):
                found.append((node.module.split(".")[1], node.lineno))
            elif node.level == 1 and package:
                found.append((package, node.lineno))
            elif node.level == 2 and node.module:
                found.append((node.module.split(".")[0], node.lineno))
            elif node.level == 2:
                found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((a.name.split(".")[1], node.lineno) for a in node.names if a.name.startswith("shared."))
    return found


MODULES = sorted(p for p in SHARED.rglob("*.py") if p.parent != SHARED)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SHARED)))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    own = path.relative_to(SHARED).parts[0]
    assert own in LAYERS, f"{own}/ is not in LAYERS: place it in the order"
    above = [(pkg, line) for pkg, line in _imports(path) if pkg in LAYERS and LAYERS.index(pkg) > LAYERS.index(own)]
    assert not above, f"{path.relative_to(SHARED)} imports a higher layer: {above}"


def test_every_package_is_a_layer_and_the_top_level_holds_only_the_entry_point() -> None:
    assert {p.name for p in SHARED.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)
    assert {p.name for p in SHARED.glob("*.py")} == {"__init__.py", "__main__.py"}


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The checker itself bites: a core module importing the sync engine is reported."""
    bad = SHARED / "core" / "_layer_probe.py"
    bad.write_text("from ..sync.engine import run_sync\n")
    try:
        assert ("sync", 1) in _imports(bad)
        with pytest.raises(AssertionError, match="higher layer"):
            test_no_module_imports_a_layer_above_its_own(bad)
    finally:
        bad.unlink()
