"""The code keeps its rooms: imports go one way, no circles, no module past one concept's size."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "worker", "models", "remotefit")
MAX_LINES = 400
MAX_ROOT_MODULES = 8
# What each room of models/ may import from the others; the foundations at models/ itself
# import none of them.
ROOMS = {
    "data": set(),
    "keras": {"data"},
    "jobs": {"keras", "data"},
    "accounts": set(),
    "sweeps": {"jobs", "keras", "data", "accounts"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The project's modules that ``path`` imports, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name in modules:
                yield name


def _room(module: str) -> str | None:
    """``keras``, ``data`` or ``jobs`` for a module of a room; ``""`` for a foundation."""
    parts = module.split(".")
    if parts[0] != "models":
        return None
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else ""


def test_models_has_rooms_and_few_foundations() -> None:
    rooms = {path.name for path in (ROOT / "models").iterdir() if (path / "__init__.py").exists()}
    assert set(ROOMS) <= rooms
    foundations = [p for p in (ROOT / "models").glob("*.py") if p.name != "__init__.py"]
    assert len(foundations) <= MAX_ROOT_MODULES, sorted(p.name for p in foundations)


def test_rooms_import_one_way() -> None:
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        room = _room(module)
        if room is None:
            continue
        for imported in _imports(path, modules):
            target = _room(imported)
            if target is None:
                wrong.append(f"{module} imports {imported} (models/ imports no api/worker/client)")
            elif target and target != room and (room == "" or target not in ROOMS[room]):
                wrong.append(f"{module} ({room or 'foundation'}) imports {imported} ({target})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    modules = _modules()
    graph = {module: set(_imports(path, modules)) - {module} for module, path in modules.items()}
    # A package's __init__ is imported with each of its modules; edges to a package only.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                cycles.append([*trail[trail.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_past_its_size(package: str) -> None:
    long = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / package).rglob("*.py")
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by concept (over {MAX_LINES} lines): {long}"


def test_readme_stays_a_newcomers_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 260, "move history and detail to docs/; the README is for a newcomer"
