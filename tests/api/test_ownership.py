"""No route reads a job or dataset by bare id: every read goes through models.access.fetch."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where the API's reads of jobs and datasets live; the worker's side (lifecycle, runner, the
# sweeper, the dispatcher) acts as the service itself and is not listed.
API_SIDE = [
    *(ROOT / "api").rglob("*.py"),
    ROOT / "models/jobs/records.py",
    ROOT / "models/jobs/initial_weights.py",
    ROOT / "models/data/catalog.py",
]
OWNED = {"Job", "Dataset"}


def _bare_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id in OWNED
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_route_reads_an_owned_object_by_bare_id() -> None:
    bare = [where for path in API_SIDE for where in _bare_reads(path)]
    assert not bare, f"read through models.access.fetch instead: {bare}"


def test_the_service_side_passes_the_service_itself_explicitly() -> None:
    """records.get and catalog.get have no default caller: each call site names one."""
    import inspect

    from models.data import catalog
    from models.jobs import records

    for function in (records.get, catalog.get, catalog.open_reader, records.delete):
        who = inspect.signature(function).parameters["who"]
        assert who.default is inspect.Parameter.empty, function
