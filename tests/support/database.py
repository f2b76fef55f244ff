"""Direct database work from a test, beside the live server."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import create_engine, session_factory

T = TypeVar("T")


async def in_session(live: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs `work(session)` on the live server's database and commits; answers what `work` answers."""
    engine = create_engine(live.settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


@asynccontextmanager
async def rolled_back_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on `database_url` inside one transaction that is rolled back at the end however the block ends, so
    a test leaves nothing behind for the others sharing the database."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            await session.begin()
            try:
                yield session
            finally:
                await session.rollback()
    finally:
        await engine.dispose()
