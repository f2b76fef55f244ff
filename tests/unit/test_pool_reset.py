"""A pooled connection goes back to its pool rolled back only when it still has a transaction open (core/db).

SQLAlchemy's default sent one more ROLLBACK for every connection returned, after every commit too: a read-only
request spent as long on it as on its query, and a job step one round trip per transaction. These tests check,
on both backends and for both kinds of engine, that a committed (or already rolled back) transaction costs no
more rollback, and that a connection returned with its transaction still open is rolled back before anyone
else gets it (its uncommitted row is gone)."""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from teamsvoice.core.db import create_blocking_engine, create_engine, session_factory, transaction


def _count_rollbacks(monkeypatch: pytest.MonkeyPatch, cls: type, sent: list[str]) -> None:
    """Counts in `sent` the rollbacks `cls`'s connections send from this test's thread only: the session's live
    server, in this process on threads of its own (its job engine too), rolls its connections back meanwhile."""
    original, mine = cls.rollback, threading.get_ident()

    def counted(self: Any) -> Any:
        if threading.get_ident() == mine:
            sent.append(cls.__name__)
        return original(self)

    monkeypatch.setattr(cls, "rollback", counted)


@pytest.fixture
def rollbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Counts the rollbacks sent by every kind of driver connection the async engines use (`_count_rollbacks`)."""
    sent: list[str] = []
    from sqlalchemy.dialects.postgresql.psycopg import AsyncAdapt_psycopg_connection
    from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

    for cls in (AsyncAdapt_psycopg_connection, AsyncAdapt_aiosqlite_connection):
        _count_rollbacks(monkeypatch, cls, sent)
    yield sent


async def test_a_finished_transaction_returns_its_connection_without_another_rollback(database_url: str, rollbacks: list[str]) -> None:
    engine = create_engine(database_url, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with transaction(sessions) as session:  # the first connection: the dialect's own setup may roll back
            await session.execute(text("SELECT 1"))
        rollbacks.clear()
        for _ in range(3):
            async with transaction(sessions) as session:
                assert (await session.execute(text("SELECT 1"))).scalar() == 1
        assert rollbacks == []  # committed: nothing left to roll back
        with pytest.raises(RuntimeError):
            async with transaction(sessions) as session:
                await session.execute(text("SELECT 1"))
                raise RuntimeError("the work failed")
        assert len(rollbacks) == 1  # the session's own rollback, and no second one from the pool
    finally:
        await engine.dispose()


async def test_a_connection_returned_inside_a_transaction_is_rolled_back(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            def write_without_ending(sync_connection: Any) -> None:
                # Through the driver, so SQLAlchemy does not know a transaction is open (as work cancelled
                # between its statements can leave it): only the pool's reset can end it.
                driver = sync_connection.connection.dbapi_connection
                cursor = driver.cursor()
                cursor.execute("CREATE TEMPORARY TABLE pool_reset_probe (a INTEGER)")
                driver.commit()
                cursor.execute("INSERT INTO pool_reset_probe VALUES (1)")
                cursor.close()

            await connection.run_sync(write_without_ending)
        async with engine.connect() as connection:  # the same pooled connection (pool of one, nothing else open)
            assert (await connection.execute(text("SELECT count(*) FROM pool_reset_probe"))).scalar() == 0
    finally:
        await engine.dispose()


def _blocking_probe(engine: Engine) -> int:
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("CREATE TEMPORARY TABLE pool_reset_probe (a INTEGER)")
    raw.commit()
    cursor.execute("INSERT INTO pool_reset_probe VALUES (1)")
    cursor.close()
    raw.close()  # back to the pool with the insert's transaction open
    with engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pool_reset_probe")).scalar_one()


def test_the_blocking_engine_rolls_back_only_what_is_open(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_blocking_engine(database_url, pool_size=1, max_overflow=0)
    try:
        assert _blocking_probe(engine) == 0
        sent: list[str] = []
        raw = engine.raw_connection()
        driver_class = type(raw.dbapi_connection)
        raw.close()
        if not driver_class.__module__.startswith("sqlite3"):  # sqlite3's connection class cannot be patched
            _count_rollbacks(monkeypatch, driver_class, sent)
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))
        assert sent == []
    finally:
        engine.dispose()
