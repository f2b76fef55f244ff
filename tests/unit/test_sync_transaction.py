"""`core/db.sync_transaction`, the job steps' one way to open a transaction (the twin of `core/db.transaction`):
committed when the block ends, rolled back when it raises, on both backends; and the job steps use it rather than
opening sessions of their own."""

import ast
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from teamsvoice.core.db import sync_transaction, sync_url
from tests.conftest import BACKENDS

SRC = Path(__file__).resolve().parents[2] / "src" / "teamsvoice"
# Every module opens its transactions through core/db (sync_transaction in job steps, the CLI and the seed),
# except these, each for its reason (a listed module that no longer opens one fails: the list only shrinks).
EXEMPT = {
    "core/db.py": "the one place: transaction, sync_transaction, end_transaction",
    "migrations/env.py": "alembic's own connection for a migration run",
    "microsoft/budget.py": "the request budget's buckets on a Core connection of their own (not the domain's rows)",
    "sbc/kamailio.py": "Kamailio's database, not teamsvoice's",
    "microsoft/identity.py": "requests.Session: an HTTP session, not a database one",
    "domain/consent/service.py": "rolls back the request's own transaction on a refused consent before recording it",
    "domain/security/throttle.py": "rolls back the request's own transaction on a failed login before counting it",
}
STEP_MODULES = [path for path in sorted(SRC.rglob("*.py")) if path.relative_to(SRC).as_posix() not in EXEMPT]

metadata = MetaData()
notes = Table("sync_transaction_notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(20)))


class Refused(Exception):
    pass


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tx.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"tv_tx_{uuid.uuid4().hex[:10]}")
    engine = create_engine(sync_url(url))
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def _texts(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return list(connection.scalars(select(notes.c.text).order_by(notes.c.id)))


def test_work_is_committed_when_the_block_ends(engine) -> None:  # type: ignore[no-untyped-def]
    with sync_transaction(engine) as session:
        session.execute(notes.insert().values(id=1, text="kept"))
    assert _texts(engine) == ["kept"]


def test_work_is_rolled_back_when_the_block_raises(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused), sync_transaction(engine) as session:
        session.execute(notes.insert().values(id=1, text="dropped"))
        raise Refused
    assert _texts(engine) == []
    with sync_transaction(engine) as session:  # and the connection went back to the pool usable
        session.execute(notes.insert().values(id=2, text="later"))
    assert _texts(engine) == ["later"]


def _opens_sessions_itself(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in {"Session", "sessionmaker", "begin", "commit", "rollback"}:
                found.append(f"line {node.lineno}: {name}()")
    return found


def test_the_walk_covers_the_job_steps() -> None:
    names = {path.relative_to(SRC).as_posix() for path in STEP_MODULES}
    assert {"jobs/webhooks.py", "jobs/fusion_wizard.py", "jobs/runtime.py", "domain/calling/workflows.py",
            "domain/audit/workflows.py", "domain/voice_state/workflows.py", "cli.py", "operator_cli.py", "demo.py"} <= names
    assert _opens_sessions_itself(SRC / "core" / "db.py")  # (the helper itself is seen opening one)


@pytest.mark.parametrize("name", sorted(EXEMPT))
def test_each_exemption_is_still_needed(name: str) -> None:
    assert _opens_sessions_itself(SRC / name), f"{name} no longer opens a session itself: remove it from EXEMPT"


@pytest.mark.parametrize("path", STEP_MODULES, ids=lambda path: path.relative_to(SRC).as_posix())
def test_job_steps_open_transactions_through_sync_transaction(path: Path) -> None:
    assert _opens_sessions_itself(path) == [], (
        f"{path.relative_to(SRC)}: open a step's transaction with `with core.db.sync_transaction(engine) as session:`")
