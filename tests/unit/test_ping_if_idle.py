"""A pooled PostgreSQL connection is pinged before use only when it lay idle (core/db `_ping_if_idle`).

SQLAlchemy's pre-ping sent an empty query at every checkout: one round trip in five of a bulk item. Now a connection
that went back to the pool moments ago is used as it is, and one idle for PING_IDLE_SECONDS is pinged first. These
tests check what a provider relies on: a connection the database dropped while it lay idle (a restart at night) is
replaced without anyone seeing an error; one dropped moments after its last use fails its next statement as a
transient error (a job step runs again, a request answers 503), and the pool then gives working connections again.
That last one found the credential cache's rollback listener reading a dropped connection's info: PendingRollbackError
in place of the loss, which made a transient failure final (it did so for a connection lost mid-statement as well)."""

import threading
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import teamsvoice.core.credential_cache  # noqa: F401 - its listeners see every rollback (the app imports it)
from teamsvoice.core import db
from teamsvoice.core.db import create_blocking_engine, create_engine, is_transient_database_error, session_factory, transaction
from tests.support.postgres import end_sessions


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has no server to drop a connection, and no ping")
    return database_url


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings sent from this test's thread (the live server's engines ping on threads of their own)."""
    from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

    sent: list[int] = []
    original, mine = PGDialect_psycopg.do_ping, threading.get_ident()

    def counted(self: Any, dbapi_connection: Any) -> Any:
        if threading.get_ident() == mine:
            sent.append(1)
        return original(self, dbapi_connection)

    monkeypatch.setattr(PGDialect_psycopg, "do_ping", counted)
    return sent


async def _backend(engine: AsyncEngine) -> int:
    async with transaction(session_factory(engine)) as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_used_moments_ago_is_not_pinged_one_left_idle_is(postgres_url: str, pings: list[int],
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 3600.0)  # "moments ago", however slowly a busy machine runs them
    engine = create_engine(postgres_url, pool_size=1)
    try:
        first = await _backend(engine)
        for _ in range(5):
            assert await _backend(engine) == first  # the same pooled connection, each time back moments ago
        assert pings == []
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # as if it had lain idle since
        assert await _backend(engine) == first
        assert len(pings) == 1
    finally:
        await engine.dispose()


def test_a_blocking_engine_pings_the_same_way(postgres_url: str, pings: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """The job engine's steps, the budget's buckets and DBOS's own tables go through blocking engines."""
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 3600.0)
    engine = create_blocking_engine(postgres_url, pool_size=1)
    try:
        for _ in range(3):
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        assert pings == []
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        engine.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_unseen(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(postgres_url, pool_size=1)
    try:
        dropped = await _backend(engine)
        assert await end_sessions(postgres_url, dropped) == 1
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # it has lain idle: the ping finds it gone
        replaced = await _backend(engine)  # no error: the pool connected anew
        assert replaced != dropped
    finally:
        await engine.dispose()


async def test_a_connection_dropped_moments_after_use_fails_once_as_transient(postgres_url: str) -> None:
    engine = create_engine(postgres_url, pool_size=2)
    try:
        async with transaction(session_factory(engine)) as a, transaction(session_factory(engine)) as b:
            pids = [int((await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()) for s in (a, b)]
        for pid in pids:  # both back in the pool moments ago, then the server restarts
            assert await end_sessions(postgres_url, pid) == 1
        with pytest.raises(Exception) as failed:
            await _backend(engine)
        assert is_transient_database_error(failed.value)  # a job step runs it again; a request answers 503
        # The pool let go of every connection older than the failure: the next use works, on a new connection.
        assert await _backend(engine) not in pids
    finally:
        await engine.dispose()
