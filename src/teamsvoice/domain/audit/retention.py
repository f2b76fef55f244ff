"""How long the audit log keeps its entries: `TEAMSVOICE_AUDIT_RETENTION_DAYS` (default 365; 0 keeps them for ever).
Older entries are deleted by the scheduled durable job in workflows.py, in batches, each its own transaction (a
long purge never holds the database for long). Resolved drift events are purged the same way
(`voice_state/drift.purge_resolved`, `TEAMSVOICE_DRIFT_RETENTION_DAYS`), by `purge_in_batches`."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_transaction
from teamsvoice.domain.audit import repository

BATCH = 5000


def cutoff(days: int, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=days)


def purge_in_batches(engine: Engine, days: int, ids_before: Callable[[Session, datetime, int], list[int]],
                     delete: Callable[[Session, Sequence[int]], None], *, now: datetime | None = None,
                     batch: int = BATCH) -> int:
    """Deletes the rows `ids_before(session, cutoff, batch)` names, `days` days back (none when `days` is 0), and
    answers how many; each batch is its own transaction. Idempotent: run again, it finds nothing more."""
    if days <= 0:
        return 0
    before, deleted = cutoff(days, now), 0
    while True:
        with sync_transaction(engine) as session:
            ids = ids_before(session, before, batch)
            if ids:
                delete(session, ids)
        if not ids:
            return deleted
        deleted += len(ids)


def purge_expired(engine: Engine, days: int, *, now: datetime | None = None, batch: int = BATCH) -> int:
    """Deletes the entries older than `days` days (none when `days` is 0) and answers how many; each batch is its
    own transaction. Idempotent: run again, it finds nothing more."""
    return purge_in_batches(engine, days, repository.ids_older_than, repository.delete_entries, now=now, batch=batch)
