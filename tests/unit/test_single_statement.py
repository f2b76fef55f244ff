"""`single_statement` (core/db): a statement in it is committed as it runs (the database's autocommit, no BEGIN
and COMMIT round trips around a one-statement transaction such as a bulk item's claim), and the connection goes
back to its pool transactional again: the next `transaction` on it still rolls back when it fails."""

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from teamsvoice.core.db import create_engine, session_factory, single_statement, transaction


@pytest.fixture
async def probe(database_url: str) -> AsyncIterator[str]:
    """A table of one row (n = 0), dropped afterwards."""
    name = f"single_statement_probe_{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url, pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await connection.execute(text(f"INSERT INTO {name} VALUES (1, 0)"))
    yield name
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP TABLE {name}"))
    await engine.dispose()


async def _n(database_url: str, table: str) -> int:
    """n as another connection sees it (what is committed)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(f"SELECT n FROM {table} WHERE id = 1"))).scalar_one()
    finally:
        await engine.dispose()


async def test_a_statement_is_committed_as_it_runs(database_url: str, probe: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    sessions = session_factory(engine)
    try:
        async with single_statement(sessions) as session:
            answered = (await session.execute(text(f"UPDATE {probe} SET n = n + 1 WHERE id = 1 RETURNING n"))).scalar_one()
            assert answered == 1
            assert await _n(database_url, probe) == 1  # committed already, before the block ends
        async with transaction(sessions) as session:  # (a transaction's write is not, until its block ends)
            await session.execute(text(f"UPDATE {probe} SET n = n + 1 WHERE id = 1"))
            assert await _n(database_url, probe) == 1
        assert await _n(database_url, probe) == 2
    finally:
        await engine.dispose()


async def test_its_connection_goes_back_to_the_pool_transactional(database_url: str, probe: str) -> None:
    engine = create_engine(database_url, pool_size=1)  # its one idle connection: the next block gets it
    sessions = session_factory(engine)
    try:
        async with single_statement(sessions) as session:
            await session.execute(text(f"UPDATE {probe} SET n = 5 WHERE id = 1"))
        with pytest.raises(RuntimeError):
            async with transaction(sessions) as session:
                await session.execute(text(f"UPDATE {probe} SET n = 100 WHERE id = 1"))
                raise RuntimeError("the work failed")
        assert await _n(database_url, probe) == 5  # rolled back: the connection did not stay in autocommit
    finally:
        await engine.dispose()
