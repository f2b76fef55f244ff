"""The job engine's synchronous engine waits for a busy SQLite database as the application's does. With pysqlite's
default 5 s, the job engine's heartbeat failed twice in a row behind a busy job's writes and `teamsvoice doctor`
saw the live process as dead (tests/cli/test_operator_commands.py after the 1,000-row import, every time)."""

import ast
from pathlib import Path

from sqlalchemy import text

from teamsvoice.core.db import create_blocking_engine


def test_a_sqlite_blocking_engine_has_the_applications_pragmas(tmp_path: Path) -> None:
    engine = create_blocking_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 15000
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


SRC = Path(__file__).resolve().parents[2] / "src" / "teamsvoice"
# Modules that may build a plain SQLAlchemy engine, each for its reason (the list only shrinks).
PLAIN_ENGINES = {
    "core/db.py": "the one place: create_engine and create_blocking_engine",
    "runner.py": "check_database: whether a PostgreSQL server answers, within a connect timeout of its own",
    "sbc/kamailio.py": "Kamailio's database, not teamsvoice's",
}


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of a module or function, not those of the functions defined in it (those are listed themselves)."""
    nodes, waiting = [], list(ast.iter_child_nodes(scope))
    while waiting:
        node = waiting.pop()
        nodes.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            waiting += ast.iter_child_nodes(node)
    return nodes


def _plain_engines(path: Path) -> list[str]:
    """Where a module calls SQLAlchemy's own create_engine (imported under any name in that function or the module,
    or as sqlalchemy.create_engine); the name imported from elsewhere (core.db's) is not it."""
    found: list[str] = []

    def walk(scope: ast.AST, plain: set[str]) -> None:
        nodes = _own_nodes(scope)
        plain = set(plain)
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if node.module == "sqlalchemy" and alias.name == "create_engine":
                        plain.add(alias.asname or alias.name)
                    else:
                        plain.discard(alias.asname or alias.name)
        for node in nodes:
            if isinstance(node, ast.Call):
                func = node.func
                if (isinstance(func, ast.Name) and func.id in plain) or (
                        isinstance(func, ast.Attribute) and func.attr == "create_engine"
                        and isinstance(func.value, ast.Name) and func.value.id == "sqlalchemy"):
                    found.append(f"line {node.lineno}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(node, plain)

    walk(ast.parse(path.read_text()), set())
    return sorted(found, key=lambda line: int(line.split()[1]))


def test_engines_on_teamsvoices_databases_come_from_core_db() -> None:
    """`teamsvoice doctor` and `teamsvoice sbc status` opened plain engines: pysqlite's 5 s busy timeout, no WAL nor
    foreign keys, SQLAlchemy's rollback after every commit."""
    found = {name: lines for path in sorted(SRC.rglob("*.py"))
             if (name := path.relative_to(SRC).as_posix()) not in PLAIN_ENGINES and (lines := _plain_engines(path))}
    assert found == {}, f"use core.db.create_blocking_engine (or create_engine) instead: {found}"
    assert all(_plain_engines(SRC / name) for name in PLAIN_ENGINES), "an exemption no longer needed: remove it"
