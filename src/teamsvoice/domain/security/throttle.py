"""Login throttling per account and per client address (both API families).

Each failed login counts against the account and against the client address. From the `free_failures`-th
failure on, the key is locked for `base_seconds * 2**(failures - free_failures)` seconds (capped): while it
is locked, a login for it is refused at once (429 with Retry-After) without the password being checked, so
guessing costs the guesser time and the server nothing. A success clears the account's counter; counters
are forgotten `forget_after_seconds` after their last failure. The counters live in the database, so every
API process shares them. Every failure and every refusal is logged as a security event, without the password.
"""

import hashlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import transaction
from teamsvoice.core.errors import AuthenticationFailed, TooManyRequests
from teamsvoice.domain.security import repository
from teamsvoice.domain.security.models import LoginThrottle

logger = logging.getLogger("teamsvoice.security")


@dataclass(frozen=True)
class Rule:
    free_failures: int
    base_seconds: float
    max_seconds: float

    def lock_seconds(self, failures: int) -> float:
        if failures < self.free_failures:
            return 0.0
        return min(self.base_seconds * 2 ** min(failures - self.free_failures, 30), self.max_seconds)


@dataclass(frozen=True)
class ThrottlePolicy:
    account: Rule
    address: Rule
    forget_after_seconds: float


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()


def _shown(text: str) -> str:
    return text[:64].encode("unicode_escape").decode("ascii")


async def _locked_for(session: AsyncSession, digests: list[str]) -> float:
    now = utcnow()
    return max(((until - now).total_seconds() for until in await repository.locked_until(session, digests, now)),
               default=0.0)


async def _count_failure(session: AsyncSession, digest: str, rule: Rule, forget_after: float) -> tuple[int, float]:
    now = utcnow()
    row = await repository.counter(session, digest)
    if row is None:
        try:
            async with session.begin_nested():
                session.add(LoginThrottle(key_digest=digest, failures=0, last_failure_at=now))
        except IntegrityError:
            pass  # another process created it first
        row = await repository.counter(session, digest)
        assert row is not None
    if (now - row.last_failure_at).total_seconds() > forget_after:
        await repository.reset_failures(session, row.id)
    failures = await repository.add_failure(session, row.id, now)  # concurrent failures in several processes all count
    lock = rule.lock_seconds(failures)
    if lock:
        await repository.lock(session, row.id, now + timedelta(seconds=lock))
    return failures, lock


@asynccontextmanager
async def login_attempt(
    sessions: async_sessionmaker[AsyncSession], session: AsyncSession, policy: ThrottlePolicy, *, family: str,
    account: str, address: str | None,
) -> AsyncIterator[None]:
    """Wraps one login: refuses it while the account or address is locked; counts it if it fails with
    AuthenticationFailed (in a transaction of its own: the request's rolls back); clears the account's
    counter if it succeeds (in `session`, the request's, committed with the tokens it issued)."""
    account_digest = _digest(f"account:{family}:{account.lower()}")
    address_digest = _digest(f"address:{address}") if address else None
    digests = [d for d in (account_digest, address_digest) if d]
    wait = await _locked_for(session, digests)
    if wait > 0:
        logger.warning("security: login refused while locked family=%s account=%s address=%s retry_after=%ds",
                       family, _shown(account), address, math.ceil(wait))
        raise TooManyRequests("Too many failed logins; try again later", retry_after=math.ceil(wait))
    try:
        yield
    except AuthenticationFailed as exc:
        await session.rollback()  # release the request's transaction: SQLite has a single writer
        async with transaction(sessions) as own:
            failures, lock = 0, 0.0
            if exc.about_the_account:
                failures, lock = await _count_failure(own, account_digest, policy.account, policy.forget_after_seconds)
            if address_digest:
                _, address_lock = await _count_failure(own, address_digest, policy.address, policy.forget_after_seconds)
                lock = max(lock, address_lock)
        logger.warning("security: login failed family=%s account=%s address=%s failures=%d locked_for=%ds",
                       family, _shown(account), address, failures, math.ceil(lock))
        raise
    await repository.forget(session, account_digest)
