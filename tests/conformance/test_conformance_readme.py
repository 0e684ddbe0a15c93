"""The README-statement map of the conformance suite stays true: each quote is in the README, each test exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conformance.statements import STATEMENTS

HERE = Path(__file__).resolve().parent
README = HERE.parents[1] / "README.md"


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def functions_in(module: str) -> set[str]:
    tree = ast.parse((HERE / f"{module}.py").read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize(("section", "quote", "tests"), STATEMENTS, ids=[s[1][:60] for s in STATEMENTS])
def test_each_statement_is_in_the_readme_and_backed_by_a_test(section: str, quote: str, tests: tuple[str, ...]) -> None:
    assert normalised(quote) in normalised(README.read_text(encoding="utf-8")), f"{section}: quote no longer in README"
    assert tests
    for test in tests:
        module, _, name = test.partition("::")
        assert name in functions_in(module), f"{test} does not exist"
