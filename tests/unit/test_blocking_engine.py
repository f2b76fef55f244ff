"""The job engine's synchronous engine waits for a busy SQLite database as the application's does. With pysqlite's
default 5 s, the job engine's heartbeat failed twice in a row behind a busy job's writes and `teamsvoice doctor`
saw the live process as dead (tests/cli/test_operator_commands.py after the 1,000-row import, every time)."""

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
