"""Direct database work from a test, beside the live server."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
