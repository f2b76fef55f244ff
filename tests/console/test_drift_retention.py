"""Drift retention: drift events resolved longer ago than TEAMSVOICE_DRIFT_RETENTION_DAYS go; an open one (however old)
and one resolved lately stay; 0 keeps everything; the purge runs as a durable job (`drift_purge`, scheduled by worker
processes beside the audit log's) on the live server's engine."""

import asyncio
import time
import uuid
from datetime import timedelta

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_url
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state.drift import purge_resolved
from teamsvoice.domain.voice_state.models import DriftEvent


def _events(engine, reseller_id: int, marker: str, ages: list[tuple[int, int | None]]) -> list[int]:  # type: ignore[no-untyped-def]
    """Drift events of an enterprise of their own: (days since first seen, days since resolved or None: open)."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=marker, tenant_id=str(uuid.uuid4()))
        session.add(enterprise)
        session.flush()
        rows = [DriftEvent(enterprise_id=enterprise.id, difference_id=f"route:{marker}:{i}", kind="route", action="create",
                           drift="route_deleted", detail=marker, difference={}, first_seen_at=now - timedelta(days=seen),
                           last_seen_at=now - timedelta(days=resolved or 0),
                           resolved_at=None if resolved is None else now - timedelta(days=resolved))
                for i, (seen, resolved) in enumerate(ages)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _left(engine, marker: str) -> list[int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return list(session.scalars(select(DriftEvent.id).where(DriftEvent.detail == marker).order_by(DriftEvent.id)))


def test_old_resolved_events_go_and_the_others_stay(live, organisation) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(live.settings.effective_database_url))
    try:
        marker = f"retention {uuid.uuid4()}"
        old, older, open_old, recent = _events(engine, organisation.resellers[0].reseller_id, marker,
                                               [(100, 91), (400, 300), (500, None), (100, 89)])
        assert purge_resolved(engine, 0) == 0  # 0: kept for ever
        assert _left(engine, marker) == [old, older, open_old, recent]
        assert purge_resolved(engine, 90, batch=1) == 2  # in batches of one
        assert _left(engine, marker) == [open_old, recent]  # open (seen 500 days ago) and resolved lately: kept
        assert purge_resolved(engine, 90) == 0  # again: nothing more
    finally:
        engine.dispose()


async def test_the_purge_runs_as_a_durable_job(live, organisation) -> None:  # type: ignore[no-untyped-def]
    from teamsvoice.domain.audit.workflows import drift_purge
    from teamsvoice.jobs.runtime import start_once

    engine = create_engine(sync_url(live.settings.effective_database_url))
    try:
        marker = f"retention {uuid.uuid4()}"
        days = live.settings.drift_retention_days
        _old, open_old, recent = _events(engine, organisation.resellers[0].reseller_id, marker,
                                         [(days + 5, days + 1), (days + 5, None), (days + 5, days - 1)])
        assert await asyncio.to_thread(start_once, f"drift-purge-test-{uuid.uuid4()}", drift_purge, "test")
        deadline = time.monotonic() + 60  # (the purge is a workflow of the engine: seconds on a loaded machine)
        while _left(engine, marker) != [open_old, recent] and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert _left(engine, marker) == [open_old, recent]
    finally:
        engine.dispose()
