"""The audit log's queries: entries in a caller's scope (filtered, paged, newest first), how often an action was
recorded per object, and the retention purge's batches. The rules (what a filter means, the page limits, the
retention) live in `service.py` and `retention.py`; and, for the recorder's session events (`recorder.py`), the
rows a write touches (read on the writing session's own connection, inside its transaction) and the entries'
insert."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, Table, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.core import search as text_search
from teamsvoice.domain.audit.models import AuditEntry

if TYPE_CHECKING:
    from teamsvoice.domain.audit.service import AuditQuery


def _filtered(scope_ids: Iterable[int], query: AuditQuery) -> Select[tuple[AuditEntry]]:
    stmt = select(AuditEntry).where(AuditEntry.owner_reseller_id.in_(list(scope_ids)))
    if query.actor:
        stmt = stmt.where(text_search.contains(AuditEntry.actor, query.actor, field="actor"))
    if query.tenant:
        needle = text_search.like_pattern(query.tenant, field="tenant")
        stmt = stmt.where(or_(text_search.matches(AuditEntry.customer, needle), text_search.matches(AuditEntry.tenant, needle)))
    if query.action:
        stmt = stmt.where(text_search.starts_with(AuditEntry.action, query.action, field="action"))
    if query.since is not None:
        stmt = stmt.where(AuditEntry.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEntry.at <= query.until)
    return stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())


async def count_entries(session: AsyncSession, scope_ids: Iterable[int], query: AuditQuery) -> int:
    """How many entries of customers under the reseller nodes `scope_ids` match (a COUNT over all of them)."""
    stmt = _filtered(scope_ids, query).order_by(None)
    return int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


async def entries_page(session: AsyncSession, scope_ids: Iterable[int], query: AuditQuery, limit: int, *,
                       offset: int = 0, older_than: tuple[datetime, int] | None = None,
                       newer_than: tuple[datetime, int] | None = None) -> list[AuditEntry]:
    """The matching entries of customers under the reseller nodes `scope_ids`, newest first, at most `limit`: from
    `offset`, or (keyset) those recorded before the entry at `older_than` (its time and id), or the `limit` recorded
    just after the one at `newer_than` (still newest first). A keyset page reads only its own rows however deep it
    lies; an offset page reads and skips every row before it."""
    stmt = _filtered(scope_ids, query)
    if older_than is not None:
        at, entry_id = older_than
        stmt = stmt.where(AuditEntry.at <= at, or_(AuditEntry.at < at, AuditEntry.id < entry_id))
    if newer_than is not None:
        at, entry_id = newer_than
        stmt = (stmt.where(AuditEntry.at >= at, or_(AuditEntry.at > at, AuditEntry.id > entry_id))
                .order_by(None).order_by(AuditEntry.at, AuditEntry.id))
        return list(reversed(list(await session.scalars(stmt.limit(limit)))))
    return list(await session.scalars(stmt.offset(offset).limit(limit)))


async def newest_entries(session: AsyncSession, scope_ids: Iterable[int], query: AuditQuery, limit: int) -> list[AuditEntry]:
    """The newest `limit` matching entries of customers under `scope_ids`."""
    return list(await session.scalars(_filtered(scope_ids, query).limit(limit)))


async def entry_in_scope(session: AsyncSession, scope_ids: Iterable[int], entry_id: int) -> AuditEntry | None:
    return await session.scalar(select(AuditEntry).where(AuditEntry.id == entry_id,
                                                         AuditEntry.owner_reseller_id.in_(list(scope_ids))))


async def counts_of_action(session: AsyncSession, action: str, object_ids: Sequence[str]) -> dict[str, int]:
    """How many entries record `action` on each of the objects (objects with none are left out)."""
    return dict((await session.execute(select(AuditEntry.object_id, func.count()).where(
        AuditEntry.action == action, AuditEntry.object_id.in_(object_ids)).group_by(AuditEntry.object_id))).tuples().all())


def ids_older_than(session: Session, before: datetime, limit: int) -> list[int]:
    """The ids of the oldest `limit` entries recorded before `before` (sync: the retention job's step)."""
    return list(session.scalars(select(AuditEntry.id).where(AuditEntry.at < before).order_by(AuditEntry.id).limit(limit)))


def delete_entries(session: Session, ids: Sequence[int]) -> None:
    session.execute(delete(AuditEntry).where(AuditEntry.id.in_(ids)))


# --- the recorder's reads and writes (synchronous, on the writing session's connection) ------------------


def row_by_id(session: Session, table: Table, key: Any) -> dict[str, Any] | None:
    row = session.connection().execute(select(table).where(table.c.id == key)).mappings().first()
    return dict(row) if row is not None else None


def rows_matching(session: Session, table: Table, where: ColumnElement[bool] | None) -> list[dict[str, Any]]:
    """The rows of `table` that a bulk UPDATE or DELETE with this WHERE clause is about to touch."""
    query = select(table) if where is None else select(table).where(where)
    return [dict(r) for r in session.connection().execute(query).mappings()]


def insert_entries(session: Session, entries: list[dict[str, Any]]) -> None:
    session.connection().execute(insert(AuditEntry.__table__), entries)
