"""The package's house rules, checked on its source: layers as folders, small modules, no
import cycles, no Airflow under the client, and every old module name still importable."""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib
import subprocess
import sys

import pytest

import airflow_provider_imkit

PACKAGE = pathlib.Path(airflow_provider_imkit.__file__).parent
ROOT_MODULES = {"__init__.py", "get_provider_info.py", "version_compat.py", "exceptions.py"}
#: Layers that never import Airflow (the client is an SDK; the approval logic is pure).
NO_AIRFLOW = ("client", "decisions", "rooms")


@functools.cache
def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module an import statement anywhere in the file names (TYPE_CHECKING ones too):
    ``from a import b`` names ``a.b`` when that is a module, else ``a``."""
    known = modules()
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in known else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_package_root_holds_only_its_four_modules() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} == ROOT_MODULES


def test_no_module_is_over_400_lines_and_the_hook_under_200() -> None:
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in lengths.items() if n > 400} == {}
    assert lengths["airflow_provider_imkit.hooks.imkit"] < 200


def test_no_import_cycles() -> None:
    known = modules()
    graph = {
        name: {dep for dep in imports_of(path) if dep in known and dep != name and dep != PACKAGE.name}
        for name, path in known.items()
    }
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in trail:
                cycles.append([*trail[trail.index(dep) :], dep])
            elif dep not in done:
                visit(dep, [*trail, dep])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("layer", NO_AIRFLOW)
def test_layers_without_airflow_never_import_it(layer: str) -> None:
    offenders = {
        name: sorted(dep for dep in imports_of(path) if dep == "airflow" or dep.startswith("airflow."))
        for name, path in modules().items()
        if name.startswith(f"{PACKAGE.name}.{layer}")
    }
    assert {name: deps for name, deps in offenders.items() if deps} == {}


def test_old_module_names_still_import() -> None:
    for old, new in airflow_provider_imkit.MOVED_MODULES.items():
        moved = importlib.import_module(f"airflow_provider_imkit.{new}")
        alias = importlib.import_module(f"airflow_provider_imkit.{old}")
        public = [n for n in dir(moved) if not n.startswith("_")]
        assert public, new
        assert all(getattr(alias, n) is getattr(moved, n) for n in public), old
    code = "from airflow_provider_imkit.retry import RetryPolicy; print(RetryPolicy.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "airflow_provider_imkit.client.retry"


def test_dag_files_importing_the_operators_do_not_load_requests() -> None:
    """The light layers stay light: what a DAG file imports (the operators, the notifier, the
    checks they run at parse time) loads no HTTP library that Airflow's own BaseOperator did
    not load already (Airflow 2.11's does; 3.x's does not)."""
    code = (
        "import sys\n"
        "from airflow.providers.common.compat.sdk import BaseOperator\n"
        "http = ('requests', 'urllib3')\n"
        "before = {n for n in http if n in sys.modules}\n"
        "import airflow_provider_imkit.operators.imkit, airflow_provider_imkit.notifications.imkit\n"
        "import airflow_provider_imkit.client.validation, airflow_provider_imkit.decisions\n"
        "print(sorted(n for n in http if n in sys.modules and n not in before))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
