"""The code's shape a newcomer relies on: no import cycle among ``app`` modules (imports
inside functions and under TYPE_CHECKING count), no class over 250 lines, one version
number, and an ``app.main`` whose import builds nothing."""

import ast
import os
import sys
import tomllib
from pathlib import Path

import app
from tests.servers import REPO, run_command

APP = REPO / "app"
MAX_CLASS_LINES = 250


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ``app`` modules ``path`` imports anywhere in its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from app.x import y`` imports app.x, and app.x.y when y is a module.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in APP.rglob("*.py")}
    modules = set(paths)
    return {name: imported_modules(path, modules) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_app_module_imports_itself_back_through_others() -> None:
    graph = import_graph()

    assert "app.collection" in graph and "app.storage.factory" in graph  # the graph is real
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_class_is_longer_than_250_lines() -> None:
    long_classes = [
        f"{path.relative_to(REPO)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in APP.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]

    assert long_classes == []


def test_the_reconciler_does_not_know_the_collection() -> None:
    assert "app.collection" not in import_graph()["app.reconciliation"]


def test_the_storage_backends_do_not_import_the_factory_that_opens_them() -> None:
    graph = import_graph()

    assert graph["app.storage.factory"] >= {
        "app.storage.embedded.store",
        "app.storage.postgres.store",
    }
    for module in ("app.storage.embedded.store", "app.storage.postgres.store", "app.config"):
        assert "app.storage.factory" not in graph[module]
    assert "app.storage.embedded.vector_index" not in graph["app.storage.postgres.store"]


def test_pyproject_takes_its_version_from_the_app() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "app.__version__"}
    assert app.__version__.count(".") == 2


def test_importing_app_main_reads_no_environment_and_starts_nothing(tmp_path: Path) -> None:
    """In a folder whose .env and environment hold invalid settings, importing the app's
    module succeeds, creates no folder and builds no app."""
    (tmp_path / ".env").write_text("TOP_K=ten\nSTORE=nowhere\n", encoding="utf-8")
    script = (
        "import app.main\n"
        "from fastapi import FastAPI\n"
        "built = [name for name, value in vars(app.main).items() if isinstance(value, FastAPI)]\n"
        "print('built:', built)\n"
    )
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MAX_UPLOAD_MB": "-1",
        "IMAGES_DIR": str(tmp_path / "images"),
        "INDEX_DIR": str(tmp_path / "index"),
    }

    finished = run_command([sys.executable, "-c", script], environment, cwd=tmp_path)

    assert finished.returncode == 0, finished.stderr
    assert "built: []" in finished.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == [".env"]
