"""The drift records' queries: drift events, a tenant's drift settings, the resellers' drift webhooks and the
deliveries to them. The rules (what a scan records, who is told, the scope a caller sees) live in `drift.py`;
these take a session and plain values and answer rows."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.orgs.repository import _enterprise_scope
from teamsvoice.domain.voice_state.models import DriftDelivery, DriftEvent, DriftWebhook, TenantDriftSettings


async def linked_enterprise_ids(session: AsyncSession, principal: Principal, *, from_id: int | None = None,
                                limit: int | None = None) -> list[int]:
    """The ids of the enterprises the caller sees that are linked to a Microsoft tenant, in id order (from the id
    `from_id` on, at most `limit`, when given)."""
    query = select(Enterprise.id).where(_enterprise_scope(principal), Enterprise.tenant_id.is_not(None)).order_by(Enterprise.id)
    if from_id is not None:
        query = query.where(Enterprise.id >= from_id)
    return list(await session.scalars(query if limit is None else query.limit(limit)))


async def linked_with_settings(session: AsyncSession,
                               principal: Principal) -> Sequence[tuple[Enterprise, TenantDriftSettings | None]]:
    """The linked enterprises the caller sees, each with its drift settings (None: never scanned nor set)."""
    return (await session.execute(
        select(Enterprise, TenantDriftSettings).outerjoin(TenantDriftSettings, TenantDriftSettings.enterprise_id == Enterprise.id)
        .where(_enterprise_scope(principal), Enterprise.tenant_id.is_not(None)).order_by(Enterprise.id))).tuples().all()


async def linked_with_settings_of(session: AsyncSession, principal: Principal, enterprise_id: int,
                                  ) -> tuple[Enterprise, TenantDriftSettings | None, int] | None:
    """One enterprise as `linked_with_settings` and `open_event_counts` give it, in one statement that reads that
    enterprise's rows only: with its drift settings and its count of open drift events; None when the caller does not
    see it or it is not linked."""
    open_count = (select(func.count(DriftEvent.id)).where(DriftEvent.enterprise_id == Enterprise.id,
                                                          DriftEvent.resolved_at.is_(None))
                  .correlate(Enterprise).scalar_subquery())
    row = (await session.execute(
        select(Enterprise, TenantDriftSettings, open_count)
        .outerjoin(TenantDriftSettings, TenantDriftSettings.enterprise_id == Enterprise.id)
        .where(Enterprise.id == enterprise_id, _enterprise_scope(principal), Enterprise.tenant_id.is_not(None)))).first()
    return None if row is None else (row[0], row[1], int(row[2] or 0))


async def first_open_events(session: AsyncSession, enterprise_id: int, limit: int) -> list[DriftEvent]:
    """The enterprise's oldest `limit` drift events not resolved yet, oldest first."""
    return list(await session.scalars(select(DriftEvent).where(
        DriftEvent.enterprise_id == enterprise_id, DriftEvent.resolved_at.is_(None)).order_by(DriftEvent.id).limit(limit)))


async def open_event_counts(session: AsyncSession) -> dict[int, int]:
    """Open (unresolved) drift events per enterprise id; enterprises with none are left out."""
    return dict((await session.execute(
        select(DriftEvent.enterprise_id, func.count(DriftEvent.id)).where(DriftEvent.resolved_at.is_(None))
        .group_by(DriftEvent.enterprise_id))).tuples().all())


async def events_in_scope(session: AsyncSession, principal: Principal, tenant_id: str | None, *,
                          include_resolved: bool, after_id: int | None = None,
                          limit: int | None = None) -> Sequence[tuple[DriftEvent, str | None]]:
    """The drift events of the enterprises the caller sees (of one tenant, when given), each with its tenant id,
    oldest first; only open ones unless `include_resolved`; those after the event `after_id` and at most `limit`,
    when given (keyset: a page reads only its own rows)."""
    query = (select(DriftEvent, Enterprise.tenant_id).join(Enterprise, Enterprise.id == DriftEvent.enterprise_id)
             .where(_enterprise_scope(principal)).order_by(DriftEvent.id))
    if tenant_id is not None:
        query = query.where(Enterprise.tenant_id == tenant_id)
    if not include_resolved:
        query = query.where(DriftEvent.resolved_at.is_(None))
    if after_id is not None:
        query = query.where(DriftEvent.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).tuples().all()


async def open_events(session: AsyncSession, enterprise_id: int) -> list[DriftEvent]:
    """The enterprise's drift events not resolved yet."""
    return list(await session.scalars(select(DriftEvent).where(
        DriftEvent.enterprise_id == enterprise_id, DriftEvent.resolved_at.is_(None))))


async def drift_settings(session: AsyncSession, enterprise_id: int) -> TenantDriftSettings | None:
    return await session.scalar(select(TenantDriftSettings).where(TenantDriftSettings.enterprise_id == enterprise_id))


async def webhook_of(session: AsyncSession, reseller_id: int) -> DriftWebhook | None:
    """The reseller's own drift webhook, if it registered one."""
    return await session.scalar(select(DriftWebhook).where(DriftWebhook.reseller_id == reseller_id))


def pending_deliveries(session: Session) -> list[tuple[int, str]]:
    """(id, job key) of every delivery still to be delivered (sync: the job engine's start)."""
    return [(i, k) for i, k in session.execute(
        select(DriftDelivery.id, DriftDelivery.job_key).where(DriftDelivery.status == "pending")).tuples()]


def resolved_event_ids_before(session: Session, before: datetime, limit: int) -> list[int]:
    """The ids of the `limit` first drift events resolved before `before` (sync: the retention job's step); open
    events are never among them, however old."""
    return list(session.scalars(select(DriftEvent.id).where(DriftEvent.resolved_at.is_not(None), DriftEvent.resolved_at < before)
                                .order_by(DriftEvent.id).limit(limit)))


def delete_events(session: Session, ids: Sequence[int]) -> None:
    session.execute(delete(DriftEvent).where(DriftEvent.id.in_(ids)))
