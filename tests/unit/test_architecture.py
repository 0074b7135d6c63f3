"""
The layers of docs/architecture.md, checked on the source: each folder imports only the layers below it.

Read from the files' syntax trees (nothing is imported), so a new module that reaches upwards, or an
example DAG that imports an internal name, fails here with the line to fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trackly_provider

REPO = Path(__file__).resolve().parents[2]
# The package as installed: the checkout's in a dev install, the wheel's in `make matrix`.
PACKAGE = Path(trackly_provider.__file__).resolve().parent

SHELL = {"trackly_provider", "exceptions", "version_compat", "get_provider_info"}
# What each layer may import at run time, besides itself and the provider shell (docs/architecture.md).
MAY_IMPORT: dict[str, set[str]] = {
    "shell": set(),
    "trackly_api": set(),
    "sandbox": {"trackly_api"},
    "database": {"trackly_api"},
    "hooks": {"trackly_api"},
    "utils": {"trackly_api", "database", "hooks"},
    "_engine": {"trackly_api", "database", "hooks", "utils"},
    "operators": {"trackly_api", "database", "hooks", "utils", "_engine"},
}
# The names the example DAGs (and so our users) may import: the documented public modules.
PUBLIC_PREFIXES = (
    "trackly_provider.operators",
    "trackly_provider.hooks.trackly",
    "trackly_provider.utils.",
    "trackly_provider.exceptions",
    "trackly_provider.sandbox",
    "trackly_provider.trackly_api.entities",  # for subclasses of BaseHistoryImportOperator
)


def layer_of(module: str) -> str:
    """``trackly_provider.operators._engine.tally`` -> ``_engine``; the root's modules -> ``shell``."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in SHELL or parts[1] == "__init__":
        return "shell"
    if parts[1] == "operators" and len(parts) > 2 and parts[2] == "_engine":
        return "_engine"
    return parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``trackly_provider`` import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == "trackly_provider"]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_layers_cover_every_folder_of_the_package():
    folders = {layer_of(module_name(path)) for path in MODULES}
    assert folders == set(MAY_IMPORT)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_each_module_imports_only_its_own_layer_and_the_layers_below(path):
    own = layer_of(module_name(path))
    allowed = MAY_IMPORT[own] | {own, "shell"}
    upward = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} ({layer_of(name)})"
        for line, name in runtime_imports(path)
        if layer_of(name) not in allowed
    ]
    assert upward == []


def test_the_root_keeps_only_the_provider_shell():
    assert {path.stem for path in PACKAGE.glob("*.py")} == SHELL - {"trackly_provider"} | {"__init__"}


@pytest.mark.parametrize("path", sorted((REPO / "dags_examples").glob("*.py")), ids=lambda path: path.name)
def test_the_example_dags_import_only_public_names(path):
    private = [
        f"{path.name}:{line} imports {name}"
        for line, name in runtime_imports(path)
        if not name.startswith(PUBLIC_PREFIXES) or "._" in name
    ]
    assert private == []


def test_a_module_reaching_upwards_is_caught(tmp_path):
    """The check itself: an import from a higher layer is reported with its line."""
    module = tmp_path / "bad.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from trackly_provider.trackly_api.limits import MAX_BODY_BYTES\n"
        "from trackly_provider.operators._engine.tally import ImportTally\n"
        "if TYPE_CHECKING:\n"
        "    from trackly_provider.operators import ClickHistoryImportOperator\n"
    )
    names = [(line, name, layer_of(name)) for line, name in runtime_imports(module)]
    assert names == [
        (2, "trackly_provider.trackly_api.limits", "trackly_api"),
        (3, "trackly_provider.operators._engine.tally", "_engine"),
    ]
