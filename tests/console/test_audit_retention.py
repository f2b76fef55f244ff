"""Audit retention: entries older than TEAMSVOICE_AUDIT_RETENTION_DAYS go, newer ones stay; 0 keeps everything;
the purge runs as a durable job (`audit_purge`, scheduled by worker processes) on the live server's engine."""

import asyncio
import time
import uuid
from datetime import timedelta

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_url
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.audit.retention import purge_expired


def _entries(engine, marker: str, ages_in_days: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session, session.begin():
        rows = [AuditEntry(at=utcnow() - timedelta(days=age), family="system", actor="retention test", action="test.entry",
                           aggregate="test", object_label=marker) for age in ages_in_days]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _left(engine, marker: str) -> list[int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return list(session.scalars(select(AuditEntry.id).where(AuditEntry.object_label == marker).order_by(AuditEntry.id)))


def test_old_entries_go_and_new_ones_stay(live) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(live.settings.effective_database_url))
    try:
        marker = f"retention {uuid.uuid4()}"
        old, older, recent, today = _entries(engine, marker, [366, 900, 364, 0])
        assert purge_expired(engine, 0) == 0  # 0: kept for ever
        assert _left(engine, marker) == [old, older, recent, today]
        assert purge_expired(engine, 365, batch=1) >= 2  # in batches of one: every old entry, whoever's
        assert _left(engine, marker) == [recent, today]
        assert purge_expired(engine, 365) == 0  # again: nothing more
    finally:
        engine.dispose()


async def test_the_purge_runs_as_a_durable_job(live) -> None:  # type: ignore[no-untyped-def]
    from teamsvoice.domain.audit.workflows import audit_purge
    from teamsvoice.jobs.runtime import start_once

    engine = create_engine(sync_url(live.settings.effective_database_url))
    try:
        marker = f"retention {uuid.uuid4()}"
        _old, recent = _entries(engine, marker, [live.settings.audit_retention_days + 1, 1])
        assert await asyncio.to_thread(start_once, f"audit-purge-test-{uuid.uuid4()}", audit_purge, "test")
        deadline = time.monotonic() + 60  # (the purge is a workflow of the engine: seconds on a loaded machine)
        while _left(engine, marker) != [recent] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert _left(engine, marker) == [recent]
    finally:
        engine.dispose()
