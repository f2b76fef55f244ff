"""SQL is built in repositories only (issue 11, docs/architecture.md): a module under domain/, console/, api/ or
jobs/ that is not a repository (`repository.py`, `repository_<x>.py`, or one of REPOSITORIES) neither imports
sqlalchemy's statement builders (select, insert, update, delete, text) nor runs a statement itself (`.execute`,
`.scalars`, `.scalar` on a session: services call a repository function, which takes the session and answers
typed rows or values). `session.add`, `session.get` and `session.flush` on ORM objects may stay in services.

KNOWN lists the modules still doing it, each with how many times (imports named and statements run). It only
shrinks: a module not listed that starts doing it fails, a listed one whose count changes fails until KNOWN says
the new count, and a listed one that is clean fails until it is removed. To print KNOWN as the tree has it now:

    .venv/bin/python -m tests.unit.test_repositories_only
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "teamsvoice"
ROOTS = ("domain", "console", "api", "jobs")
BUILDERS = {"select", "insert", "update", "delete", "text"}
RUNS = {"execute", "scalars", "scalar"}
# Repositories by another name (docs/architecture.md says so).
REPOSITORIES = {"domain/provisioning/voice_users.py"}

# What is left (regenerate with the command above): the job engine sets the write-ahead log on DBOS's own SQLite
# file through a plain sqlite3 connection (a PRAGMA, not a query of ours).
KNOWN: dict[str, int] = {
    "jobs/runtime.py": 1,
}


def violations(source: str) -> list[str]:
    """Where `source` imports a statement builder from sqlalchemy or runs a statement, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            found += [f"line {node.lineno}: imports {alias.name} from {node.module}"
                      for alias in node.names if alias.name in BUILDERS]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: imports {alias.name} (its builders)" for alias in node.names
                      if alias.name == "sqlalchemy"]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNS:
            found.append(f"line {node.lineno}: runs .{node.func.attr}()")
    return found


def is_repository(name: str) -> bool:
    return Path(name).name.startswith("repository") or name in REPOSITORIES


def _modules() -> dict[str, Path]:
    return {path.relative_to(SRC).as_posix(): path for root in ROOTS for path in sorted((SRC / root).rglob("*.py"))}


def counts() -> dict[str, int]:
    """How many violations each module that is not a repository has (clean ones left out)."""
    found = {name: len(violations(path.read_text())) for name, path in _modules().items() if not is_repository(name)}
    return {name: count for name, count in sorted(found.items()) if count}


def test_the_walk_covers_the_layers_and_knows_the_repositories() -> None:
    names = set(_modules())
    assert {"domain/voice_state/drift.py", "domain/jobs/catalogue.py", "console/pages.py", "api/deps.py",
            "jobs/runtime.py", "domain/voice_state/repository.py"} <= names
    assert is_repository("domain/voice_state/repository_drift.py") and is_repository("domain/orgs/repository.py")
    assert not is_repository("domain/voice_state/drift.py")
    assert all(name in names for name in REPOSITORIES)


def test_no_module_starts_building_sql_outside_a_repository() -> None:
    new = {name: count for name, count in counts().items() if name not in KNOWN}
    details = {name: violations(_modules()[name].read_text()) for name in new}
    assert new == {}, ("SQL built outside a repository: move the statements into the concept's repository.py "
                       f"(or repository_<x>.py beside it) and call it from the service: {details}")


def test_known_modules_only_shrink() -> None:
    now = counts()
    changed = {name: (count, now.get(name, 0)) for name, count in KNOWN.items() if now.get(name, 0) != count}
    assert changed == {}, ("KNOWN is out of date, as (listed, now) per module: a module now clean must be removed "
                           "from KNOWN, a lower count written in (a higher one is new SQL outside a repository: "
                           "move it instead). Print KNOWN as it is now with `.venv/bin/python -m "
                           "tests.unit.test_repositories_only`")


@pytest.mark.parametrize("source", [
    "from sqlalchemy import select\n",
    "from sqlalchemy.sql import text\n",
    "from sqlalchemy import func, update as sql_update\n",
    "import sqlalchemy as sa\n",
    "async def f(session, q):\n    return await session.scalar(q)\n",
    "async def f(uow, q):\n    return (await uow.session.execute(q)).all()\n",
    "def f(own, q):\n    return list(own.scalars(q))\n",
])
def test_the_check_sees_each_kind_of_breach(source: str) -> None:
    assert violations(source)


def test_the_check_lets_a_service_call_a_repository_and_keep_orm_work() -> None:
    source = ("from sqlalchemy.exc import IntegrityError\nfrom sqlalchemy.ext.asyncio import AsyncSession\n"
              "from teamsvoice.domain.voice_state import repository_drift as records\n"
              "async def f(session, enterprise, row):\n    events = await records.open_events(session, enterprise.id)\n"
              "    session.add(row)\n    await session.flush()\n    return await session.get(type(row), 1), events\n")
    assert violations(source) == []


if __name__ == "__main__":
    print("KNOWN: dict[str, int] = {")
    for name, count in counts().items():
        print(f'    "{name}": {count},')
    print("}")
