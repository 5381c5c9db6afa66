"""The layers, beyond what the import-linter contracts in pyproject.toml can say."""

from __future__ import annotations

import sys

import grimp
import pytest

# What the engine and the simulator may import besides themselves: the standard library.
STDLIB = sys.stdlib_module_names | {"__future__"}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("pruner", include_external_packages=True)


@pytest.mark.parametrize("package", ["pruner.engine", "pruner.sim"])
def test_package_imports_only_the_standard_library_from_outside(
    graph: grimp.ImportGraph, package: str
) -> None:
    outside = {
        imported.split(".")[0]
        for module in graph.find_descendants(package) | {package}
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("pruner")
    }
    assert sorted(outside - STDLIB) == []
