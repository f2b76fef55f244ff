"""The login throttle's counters (`LoginThrottle`, one row per hashed account or address key). The rules (when a
key locks and for how long) live in `throttle.py`; these take a session and plain values. Counting is an
increment in SQL, so concurrent failures in several processes all count. And the console's sign-outs
(`ConsoleSignOut`, console/auth.py)."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.security.models import ConsoleSignOut, LoginThrottle


async def locked_until(session: AsyncSession, digests: Sequence[str], now: datetime) -> list[datetime]:
    """When each of the keys that is locked at `now` unlocks."""
    return [until for until in await session.scalars(select(LoginThrottle.locked_until).where(
        LoginThrottle.key_digest.in_(digests), LoginThrottle.locked_until > now)) if until is not None]


async def counter(session: AsyncSession, digest: str) -> LoginThrottle | None:
    return await session.scalar(select(LoginThrottle).where(LoginThrottle.key_digest == digest))


async def reset_failures(session: AsyncSession, counter_id: int) -> None:
    await session.execute(update(LoginThrottle).where(LoginThrottle.id == counter_id).values(failures=0))


async def add_failure(session: AsyncSession, counter_id: int, now: datetime) -> int:
    """Counts one more failure at `now`; answers the count."""
    await session.execute(update(LoginThrottle).where(LoginThrottle.id == counter_id).values(
        failures=LoginThrottle.failures + 1, last_failure_at=now))
    return await session.scalar(select(LoginThrottle.failures).where(LoginThrottle.id == counter_id)) or 1


async def lock(session: AsyncSession, counter_id: int, until: datetime) -> None:
    await session.execute(update(LoginThrottle).where(LoginThrottle.id == counter_id).values(locked_until=until))


async def forget(session: AsyncSession, digest: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key_digest == digest))


async def signed_out(session: AsyncSession, token_digest: str) -> bool:
    return await session.get(ConsoleSignOut, token_digest) is not None


async def sign_out(session: AsyncSession, token_digest: str, expires_at: datetime, now: datetime) -> None:
    """Records the sign-out (once: signing out twice changes nothing) and forgets those whose cookies expired."""
    await session.execute(delete(ConsoleSignOut).where(ConsoleSignOut.expires_at <= now))
    if await session.get(ConsoleSignOut, token_digest) is None:
        session.add(ConsoleSignOut(token_digest=token_digest, expires_at=expires_at))
