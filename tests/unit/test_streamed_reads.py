"""A page of an answer already streaming (a bulk job's items: Fusion's job details, the synchronous bulk update's
result, the console's results CSV) is read again when the database fails transiently: its 200 and first bytes are
sent, so the failure could no longer be a 503, and the client got a body cut short (`incomplete chunked read`: seen
in tests/e2e/test_job_outage.py when PostgreSQL ended every connection while the job's details streamed)."""

import pytest
from sqlalchemy import exc as sa_exc

from teamsvoice.core import db


def dropped() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT ...", {}, Exception("terminating connection due to administrator command"))


async def test_a_page_read_when_the_database_failed_transiently_is_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db.asyncio, "sleep", _no_wait)
    failures = [dropped(), dropped()]

    async def read() -> list[int]:
        if failures:
            raise failures.pop()
        return [1, 2]

    assert await db.read_again_while_transient(read) == [1, 2] and failures == []


async def test_a_lasting_or_other_failure_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db.asyncio, "sleep", _no_wait)
    tries = 0

    async def always_dropped() -> None:
        nonlocal tries
        tries += 1
        raise dropped()

    with pytest.raises(sa_exc.OperationalError):
        await db.read_again_while_transient(always_dropped)
    assert tries == db.STREAMED_READ_TRIES

    async def broken() -> None:
        nonlocal tries
        tries += 1
        raise ValueError("a defect")

    tries = 0
    with pytest.raises(ValueError):
        await db.read_again_while_transient(broken)
    assert tries == 1


async def _no_wait(_seconds: float) -> None:
    return None
