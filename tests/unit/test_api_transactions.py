"""Routers never commit nor query: a request's transaction is `api/deps.unit_of_work` (ended early only
through `UnitOfWork.end_transaction`), and queries live in the domain's repositories (docs/architecture.md)."""

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "src" / "teamsvoice" / "api"
HELPER = API / "deps.py"  # the one place that opens and commits the request's transaction
TRANSACTION_CALLS = {"commit", "rollback", "begin", "begin_nested"}
QUERY_BUILDERS = {"select", "insert", "update", "delete", "text"}
SESSION_NAMES = {"session", "sessions"}


def _receiver(node: ast.expr) -> str | None:
    """The last name of what a method is called on: `uow.session.get(...)` -> "session"."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _receiver(node.func)
    return None


def violations(source: str) -> list[str]:
    """What in `source` commits, builds SQL or works a session directly, one line each."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            builders = sorted(alias.name for alias in node.names if alias.name in QUERY_BUILDERS)
            if builders:
                found.append(f"line {node.lineno}: imports {', '.join(builders)} from {node.module}")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in QUERY_BUILDERS | {"sessions"}:
            found.append(f"line {node.lineno}: calls {func.id}()")
        elif isinstance(func, ast.Attribute):
            if func.attr in TRANSACTION_CALLS | {"sessions"}:
                found.append(f"line {node.lineno}: calls .{func.attr}()")
            elif _receiver(func.value) in SESSION_NAMES:
                found.append(f"line {node.lineno}: calls {_receiver(func.value)}.{func.attr}()")
    return found


def _modules() -> list[Path]:
    return sorted(path for path in API.rglob("*.py") if path != HELPER)


def test_the_api_package_is_walked() -> None:
    names = {path.relative_to(API).as_posix() for path in _modules()}
    assert {"fusion/msteams_users.py", "connecttoteams/provisioning.py", "teamsvoice/voice_state.py"} <= names


@pytest.mark.parametrize("path", _modules(), ids=lambda path: path.relative_to(API).as_posix())
def test_router_neither_commits_nor_queries(path: Path) -> None:
    assert violations(path.read_text()) == [], (
        f"{path.relative_to(API)}: open transactions with api/deps.UnitOfWorkDep (end one early with "
        "uow.end_transaction()) and move queries into the domain's repository.py")


@pytest.mark.parametrize("source", [
    "async def f(uow):\n    await uow.session.commit()\n",
    "async def f(session):\n    await session.rollback()\n",
    "from sqlalchemy import select\n",
    "def f(x):\n    return select(x)\n",
    "async def f(uow, x):\n    return await uow.session.get(x, 1)\n",
    "async def f(uow, x):\n    await uow.session.execute(x)\n",
    "async def f(container):\n    async with container.sessions() as s:\n        pass\n",
])
def test_the_check_sees_each_kind_of_breach(source: str) -> None:
    assert violations(source)


def test_the_check_lets_a_router_pass_the_session_on() -> None:
    source = ("async def f(uow, access):\n    await uow.end_transaction()\n"
              "    return await service.list_users(uow.session, access)\n")
    assert violations(source) == []
