"""Issue 11's house rule for the calling and SBC services: SQL statements are built, and run, in their
repositories (`domain/calling/repository.py`, `domain/sbc/repository.py`); the services hold the rules."""

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "teamsvoice" / "domain"
SERVICES = sorted(path for package in ("calling", "sbc") for path in (DOMAIN / package).glob("*.py")
                  if not path.name.startswith(("repository", "models")))
BUILDERS = {"select", "insert", "update", "delete", "text", "func", "or_", "and_"}
RUNNERS = {"execute", "scalars", "scalar"}


def statements(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names if a.name in BUILDERS]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNNERS:
            found.append(f"line {node.lineno}: calls .{node.func.attr}()")
    return found


def test_the_check_sees_a_query_and_passes_a_repository_call() -> None:
    assert statements("from sqlalchemy import select\n")
    assert statements("async def f(session, q):\n    return await session.scalar(q)\n")
    assert statements("def f(session, q):\n    return list(session.execute(q))\n")
    assert statements("async def f(session, e):\n    return await repository.routes_of(session, e.id)\n") == []
    assert {"calling/pbx.py", "calling/workflows.py", "sbc/service.py"} <= {
        p.relative_to(DOMAIN).as_posix() for p in SERVICES}


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.relative_to(DOMAIN).as_posix())
def test_calling_and_sbc_services_build_no_sql(path: Path) -> None:
    assert statements(path.read_text()) == [], (
        f"{path.relative_to(DOMAIN)}: move the statement into the package's repository.py, as a function named "
        "for what it answers")
