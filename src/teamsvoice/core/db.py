"""Database engines, the request-scoped session, and migrations."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine as create_sync_engine, event, exc as sa_exc, text
from sqlalchemy.pool import NullPool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Session

# Inside the package, so that an installed teamsvoice (not only a source checkout) can migrate.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


MIGRATION_LOCK_KEY = 0x7465616D73  # "teams"


class Base(DeclarativeBase):
    pass


# What a momentarily unavailable database says: SQLite busy past its timeout, PostgreSQL restarting, a
# connection lost, a serialization failure or deadlock that the loser may simply run again.
_TRANSIENT_MESSAGES = ("database is locked", "database is busy", "could not serialize", "deadlock detected",
                       "server closed the connection", "connection refused", "terminating connection",
                       "the database system is starting up", "the database system is shutting down",
                       "connection is closed", "consuming input failed")


def is_transient_database_error(exc: BaseException) -> bool:
    """Whether trying the same work again later can succeed: no pooled connection was free in time, the
    connection was lost, or the database was briefly locked, restarting or resolving a conflict."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no free connection in time
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.OperationalError):
            text_ = str(exc.orig).lower()
            return any(message in text_ for message in _TRANSIENT_MESSAGES)
    return False


T = TypeVar("T")
STREAMED_READ_TRIES = 6  # a page of a streamed answer read again this many times at most (0.2 s, doubling: about 6 s)


async def read_again_while_transient(read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, run again after a short backoff while it fails transiently (`is_transient_database_error`), at most
    STREAMED_READ_TRIES times. For the pages of an answer already streaming: its status and first bytes are sent, so
    a failure then can no longer be a 503; the client got a body cut short (a 200 whose JSON never ended)."""
    delay = 0.2
    for attempt in range(STREAMED_READ_TRIES):
        try:
            return await read()
        except Exception as exc:
            if attempt == STREAMED_READ_TRIES - 1 or not is_transient_database_error(exc):
                raise
        await asyncio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


# What a person or client is told when such a failure gave their request or command up (the API's 503 with
# Retry-After, the CLI's exit 2): job steps run their work again themselves, a caller decides to.
DATABASE_BUSY = ("teamsvoice's database did not answer or was busy (stopped or restarting, a lock conflict with "
                 "concurrent work, no free connection in time); this was not done: try again")


def async_url(url: str) -> str:
    """Map a plain `sqlite:`/`postgresql:` URL to the async driver we ship."""
    if url.startswith("sqlite:"):
        return url.replace("sqlite:", "sqlite+aiosqlite:", 1)
    if url.startswith(("postgresql:", "postgres:")):
        return "postgresql+psycopg:" + url.split(":", 1)[1]
    return url


def sync_url(url: str) -> str:
    if url.startswith(("postgresql:", "postgres:")):
        return "postgresql+psycopg:" + url.split(":", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets the job engine and API read while one writes; a busy timeout instead of "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _open_transaction(dbapi_connection) -> bool:  # type: ignore[no-untyped-def]
    """Whether a connection has a transaction open, as its driver knows without asking the server (psycopg: its
    transaction status; sqlite3 and aiosqlite: `in_transaction`); True when the driver cannot tell."""
    driver = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    status = getattr(getattr(driver, "info", None), "transaction_status", None)
    if status is not None:
        return getattr(status, "name", status) != "IDLE"
    return bool(getattr(driver, "in_transaction", True))


def _reset_on_return(dbapi_connection, _record, state) -> None:  # type: ignore[no-untyped-def]
    """A connection going back to the pool is rolled back only when a transaction is still open on it (work that
    failed or was cancelled before it ended). SQLAlchemy's own reset rolled back every connection on return: after
    every commit, and after every session that had already rolled back, one more round trip (a read-only request
    spent as long on it as on its query). Engines take it with `pool_reset_on_return=None` (`_options`)."""
    if not state.terminate_only and state.asyncio_safe and _open_transaction(dbapi_connection):
        dbapi_connection.rollback()


def _options(url: str) -> dict[str, Any]:
    """What both engine builders give SQLAlchemy: SQLite's 15 s busy timeout, and no reset on return of its own
    (`_configure` adds `_reset_on_return`, and on PostgreSQL `_ping_if_idle` instead of SQLAlchemy's pre-ping)."""
    options: dict[str, Any] = {"connect_args": {"timeout": 15}} if url.startswith("sqlite") else {}
    return options | {"pool_reset_on_return": None}


# A pooled PostgreSQL connection is pinged before use only when it has lain unused this long: one that went back
# moments ago is used as it is. SQLAlchemy's pre-ping sent an empty query at every checkout: under a bulk job one
# round trip in five (5-6 per item) and 2.5% of a worker's CPU (bench/README run Y). Should the database drop such a
# connection meanwhile (a restart), its statement fails as a transient error (`is_transient_database_error`: the
# connection is invalidated; a job step runs again, a request answers 503) and the pool replaces every connection
# older than that failure, as it does for a connection lost mid-statement, which no ping ever covered.
PING_IDLE_SECONDS = 1.0
_USED_AT = "teamsvoice_used_at"


def _just_used(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
    record.info[_USED_AT] = time.monotonic()  # connected, or back in the pool


def _ping_if_idle(dialect):  # type: ignore[no-untyped-def]
    def checkout(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get(_USED_AT, 0.0) < PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa_exc.DisconnectionError(str(exc)) from exc  # the pool connects anew and tries again
            raise
    return checkout


def _sqlite_savepoint_inside(connection, _name) -> None:  # type: ignore[no-untyped-def]
    """A savepoint is always part of the transaction around it. Python's sqlite3 opens a transaction only before
    its first write (the reads before it run on their own), and SQLite takes a SAVEPOINT outside a transaction as
    the start of one that its RELEASE commits: a row added in a savepoint before the transaction's first write
    (a voice user's record, the drift settings' row) stayed written when the transaction failed afterwards, on
    SQLite alone. Such a savepoint now opens the transaction first (deferred: the write in it takes the lock)."""
    if not _open_transaction(connection.connection.dbapi_connection):
        connection.exec_driver_sql("BEGIN")


def _configure(engine: Engine, url: str) -> None:
    """What both engine builders add to their engine: SQLite's pragmas on each connection and its savepoints
    inside their transaction; PostgreSQL's ping of a connection that lay idle; the reset on return."""
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_savepoint_inside)
    else:
        event.listen(engine, "connect", _just_used)
        event.listen(engine, "checkin", _just_used)
        event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    event.listen(engine, "reset", _reset_on_return)


POOL_SIZE = 10  # Settings.database_pool_size's default
POOL_TIMEOUT_SECONDS = 30.0


def create_engine(url: str, *, pool_size: int = POOL_SIZE, pool_timeout: float = POOL_TIMEOUT_SECONDS) -> AsyncEngine:
    """The application's engine: `pool_size` pooled connections (TEAMSVOICE_DATABASE_POOL_SIZE) and as many again
    for a moment; a caller waits up to `pool_timeout` for one (then `is_transient_database_error`)."""
    engine = create_async_engine(async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout,
                                 **_options(url))
    _configure(engine.sync_engine, url)
    return engine


def create_blocking_engine(url: str, *, connect_args: dict[str, Any] | None = None, **pool: int) -> Engine:
    """A synchronous engine (the job engine's steps, its heartbeat and recovery; the budget's buckets and DBOS's
    own tables, with `pool` sizes and `connect_args` of their own) on the same terms as the application's: on
    SQLite the same pragmas (WAL, a 15 s busy timeout, foreign keys), on PostgreSQL the same ping of an idle
    connection, and the same reset on return. Without the pragmas the job engine's connections waited 5 s
    (pysqlite's default) for a busy database and then failed: under a busy job's writes a heartbeat could miss two
    beats in a row and the live process look dead for 10 s."""
    options = _options(url)
    options["connect_args"] = options.get("connect_args", {}) | (connect_args or {})
    engine = create_sync_engine(sync_url(url), **pool, **options)
    _configure(engine, url)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# One way to open a transaction. A request gets its session from `api/deps.unit_of_work` (built on
# `transaction`); a job step, a CLI command or a service working in sessions of its own opens
# `async with transaction(sessions) as session:` (a synchronous job step `with sync_transaction(engine) as
# session:`). Work is committed when the block ends and rolled back on
# any error. Code that must record a wish before asking Microsoft (or before waiting on a job) ends the
# transaction early with `end_transaction(session)`; nothing else calls `commit()`. A hot path whose
# transaction is one statement may open `single_statement(sessions)` instead.


@asynccontextmanager
async def transaction(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed when the block ends and rolled back when it raises."""
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@contextmanager
def sync_transaction(engine: Engine) -> Iterator[Session]:
    """`transaction`'s twin for the job steps' synchronous code (DBOS steps run in threads): a session whose
    work is committed when the block ends and rolled back when it raises. Like the request's session, it
    does not expire what it loaded when it commits, so a step may read the rows it wrote after the block."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@asynccontextmanager
async def single_statement(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose statements each commit as they run (the database's autocommit): a transaction of ONE
    statement without the BEGIN and the COMMIT around it, two round trips of three (a bulk item's claim, once per
    item). Each statement in it is a transaction of its own: two writes that must land together belong in
    `transaction`. Reads after the one write are fine (each sees what is committed when it runs)."""
    async with transaction(sessions) as session:  # its commit sends nothing: the connection goes back, reset
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


async def end_transaction(session: AsyncSession) -> None:
    """Commits what is written so far, so that no transaction (nor SQLite's write lock) is held while the
    caller waits on something outside the database: Microsoft, or a job it just enqueued. The pattern is
    record the wish, `end_transaction`, then reconcile; the session stays usable and a later write opens a
    new transaction, committed by the enclosing `transaction` (or request)."""
    await session.commit()


def upgrade_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    if not url.startswith(("postgresql:", "postgres:")):
        # "heads": capability branches of the migration tree may be applied side by side.
        command.upgrade(config, "heads")
        return
    # Several api/worker processes may start at once: one migrates, the others wait for it.
    engine = create_sync_engine(sync_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "heads")
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()
    finally:
        engine.dispose()
