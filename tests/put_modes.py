"""Run a test module under both readings of ``PUT .../synchronization/secrets``.

Microsoft documents neither: the evidence leans to *merge* (the keys sent are set, an empty value
deletes its key), the strictest reading is *replace*. The product must be right under both, so the
end-to-end modules import these two names, and every test there that uses the ``harness`` fixture runs
once per mode::

    from tests.put_modes import graph_put_mode, pytest_generate_tests  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from standins.graph import PUT_MODES


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness" in metafunc.fixturenames:
        metafunc.parametrize("graph_put_mode", PUT_MODES, indirect=True)


@pytest.fixture(autouse=True)
def graph_put_mode(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Sets the Graph stand-in's PUT mode, also as what its resets return to, for the test's duration."""
    mode = getattr(request, "param", None)
    if mode is None:
        yield None
        return
    graph = request.getfixturevalue("harness").stack.graph
    graph.default_put_mode = graph.put_mode = mode
    try:
        yield mode
    finally:
        graph.default_put_mode = graph.put_mode = "merge"
