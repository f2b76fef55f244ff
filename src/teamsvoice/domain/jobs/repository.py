"""The job catalogue's queries (`catalogue.py`): for each kind of durable job, its records with the customer (or
the reseller) they belong to, newest first, limited to a caller's scope (the reseller nodes whose customers'
jobs it may see; None: all) and, when given, to some ids; and what the catalogue reads beside them. Each kind's
query has one shape (`_newest`); the rules (status, retry and cancel) live in `catalogue.py`."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from teamsvoice.domain.calling.models import CallingJob, CallingJobResult
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant, FusionWizardRun
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook, VoiceApplyJob

Scope = list[int] | None
Where = ColumnElement[bool] | None
Row = TypeVar("Row")


def _newest(query: Select[Any], key: InstrumentedAttribute[int], scope: Scope, ids: Sequence[int] | None, limit: int,
            reseller: Any = Enterprise.reseller_id, where: Where = None) -> Select[Any]:
    """`query`'s rows whose `reseller` is in scope, whose `key` is one of `ids` (when given) and that meet `where`
    (the catalogue's condition on their status, applied before the limit), newest first (highest key), at most
    `limit`."""
    if scope is not None:
        query = query.where(reseller.in_(scope))
    if ids is not None:
        query = query.where(key.in_(ids))
    if where is not None:
        query = query.where(where)
    return query.order_by(key.desc()).limit(limit)


async def _rows(session: AsyncSession, query: Select[Any]) -> list[Any]:
    return list((await session.execute(query)).tuples().all())


def _of_subscription(query: Select[Any], subscription_id: Any) -> Select[Any]:
    return (query.join(FusionSubscription, FusionSubscription.id == subscription_id)
            .join(Enterprise, Enterprise.id == FusionSubscription.enterprise_id))


async def subscription_jobs(session: AsyncSession, model: type[Row], scope: Scope, ids: Sequence[int] | None,
                            limit: int, where: Where = None) -> list[tuple[Row, Enterprise]]:
    """Records of `model` (a job kept per Fusion subscription: FusionBulkJob, FusionResourceAccount; its `id` and
    `subscription_id`) with the subscription's customer."""
    query = _of_subscription(select(model, Enterprise), model.subscription_id)  # type: ignore[attr-defined]
    return await _rows(session, _newest(query, model.id, scope, ids, limit, where=where))  # type: ignore[attr-defined]


def _bulk_jobs_of(query: Select[Any], tenants: ColumnElement[bool]) -> Select[Any]:
    return (query.join(FusionSubscription, FusionSubscription.id == FusionBulkJob.subscription_id)
            .join(FusionTenant, FusionTenant.id == FusionSubscription.fusion_tenant_id).where(tenants))


async def bulk_jobs_of_tenants(session: AsyncSession, tenants: ColumnElement[bool], offset: int, limit: int
                               ) -> tuple[list[tuple[FusionBulkJob, FusionSubscription, FusionTenant]], int]:
    """A page of the bulk jobs of the subscriptions of the Fusion tenants that meet `tenants`, newest first (highest
    id), each with its subscription and tenant, and how many there are in all."""
    query = _bulk_jobs_of(select(FusionBulkJob, FusionSubscription, FusionTenant), tenants)
    rows = await _rows(session, query.order_by(FusionBulkJob.id.desc()).offset(offset).limit(limit))
    if 0 < len(rows) < limit or (offset == 0 and not rows):
        return rows, offset + len(rows)  # the last page: no count needed
    count = _bulk_jobs_of(select(func.count(FusionBulkJob.id)).select_from(FusionBulkJob), tenants)
    return rows, await session.scalar(count) or 0


async def bulk_item_tries(session: AsyncSession, job_ids: Sequence[int]) -> dict[int, int]:
    """The most tries of any item, per bulk job."""
    if not job_ids:
        return {}
    return dict(await _rows(session, select(FusionBulkItem.job_id, func.max(FusionBulkItem.attempts)).where(
        FusionBulkItem.job_id.in_(job_ids)).group_by(FusionBulkItem.job_id)))


async def bulk_item_errors(session: AsyncSession, job_ids: Sequence[int]) -> list[tuple[int, Any]]:
    """(job id, stored error) of each item that ended in error, the latest last."""
    if not job_ids:
        return []
    return await _rows(session, select(FusionBulkItem.job_id, FusionBulkItem.error).where(
        FusionBulkItem.job_id.in_(job_ids), FusionBulkItem.status == "error").order_by(FusionBulkItem.updated_on))


async def bulk_item_waits(session: AsyncSession, job_ids: Sequence[int]) -> list[tuple[int, Any]]:
    """(job id, recorded details) of each pending item that has some (a waiting item's say why it waits), the
    latest last."""
    if not job_ids:
        return []
    return await _rows(session, select(FusionBulkItem.job_id, FusionBulkItem.details).where(
        FusionBulkItem.job_id.in_(job_ids), FusionBulkItem.status == "pending", FusionBulkItem.details.is_not(None))
        .order_by(FusionBulkItem.updated_on))


async def consent_deliveries(session: AsyncSession, scope: Scope, ids: Sequence[int] | None,
                             limit: int, where: Where = None) -> list[tuple[WebhookDelivery, Enterprise]]:
    query = select(WebhookDelivery, Enterprise).join(Enterprise, Enterprise.id == WebhookDelivery.enterprise_id)
    return await _rows(session, _newest(query, WebhookDelivery.id, scope, ids, limit, where=where))


async def consent_deliveries_of(session: AsyncSession, enterprise_id: int, scope: Scope, limit: int) -> list[WebhookDelivery]:
    """The enterprise's consent webhook deliveries, if it is in scope (else none), newest first."""
    query = (select(WebhookDelivery).join(Enterprise, Enterprise.id == WebhookDelivery.enterprise_id)
             .where(Enterprise.id == enterprise_id))
    return list(await session.scalars(_newest(query, WebhookDelivery.id, scope, None, limit)))


async def drift_deliveries(session: AsyncSession, scope: Scope, ids: Sequence[int] | None,
                           limit: int, where: Where = None) -> list[tuple[DriftDelivery, DriftWebhook, Reseller]]:
    """Scoped by the reseller whose webhook they go to."""
    query = (select(DriftDelivery, DriftWebhook, Reseller).join(DriftWebhook, DriftWebhook.id == DriftDelivery.webhook_id)
             .join(Reseller, Reseller.id == DriftWebhook.reseller_id))
    return await _rows(session, _newest(query, DriftDelivery.id, scope, ids, limit, DriftWebhook.reseller_id, where))


async def enterprises_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Enterprise]:
    if not ids:
        return {}
    return {e.id: e for e in await session.scalars(select(Enterprise).where(Enterprise.id.in_(ids)))}


async def wizard_runs(session: AsyncSession, scope: Scope, ids: Sequence[int] | None, limit: int, status: ColumnElement[str],
                      where: Where = None) -> list[tuple[FusionWizardRun, FusionSubscription, Enterprise, str]]:
    """With each run's `status` (the catalogue's rule, computed by the database)."""
    query = _of_subscription(select(FusionWizardRun, FusionSubscription, Enterprise, status), FusionWizardRun.subscription_id)
    return await _rows(session, _newest(query, FusionWizardRun.id, scope, ids, limit, where=where))


async def newest_wizard_runs(session: AsyncSession, subscription_ids: set[int]) -> dict[int, int]:
    """The id of each subscription's newest wizard run."""
    if not subscription_ids:
        return {}
    return dict(await _rows(session, select(FusionWizardRun.subscription_id, func.max(FusionWizardRun.id)).where(
        FusionWizardRun.subscription_id.in_(subscription_ids)).group_by(FusionWizardRun.subscription_id)))


async def calling_jobs(session: AsyncSession, scope: Scope, ids: Sequence[int] | None,
                       limit: int, where: Where = None) -> list[tuple[CallingJob, Enterprise]]:
    query = select(CallingJob, Enterprise).join(Enterprise, Enterprise.id == CallingJob.enterprise_id)
    return await _rows(session, _newest(query, CallingJob.id, scope, ids, limit, where=where))


async def calling_result_tallies(session: AsyncSession, job_ids: Sequence[int]) -> dict[int, tuple[int, int, Any]]:
    """Per calling job that has results: (how many, how many FAILED, the result of its last failure or None), the
    last failure being the one recorded latest (of one moment: the latest in the job's order). One query for all
    the jobs, counted by the database: no job's results are read but that one failure's."""
    if not job_ids:
        return {}
    result, failure = CallingJobResult, aliased(CallingJobResult)
    failed = func.upper(result.status) == "FAILED"
    last_failure = (select(failure.result).where(failure.job_id == result.job_id, func.upper(failure.status) == "FAILED")
                    .order_by(failure.updated_at.desc(), failure.id.desc()).limit(1).correlate(result).scalar_subquery())
    rows = await _rows(session, select(result.job_id, func.count(), func.sum(case((failed, 1), else_=0)), last_failure)
                       .where(result.job_id.in_(job_ids)).group_by(result.job_id))
    return {job_id: (count, int(failures or 0), last) for job_id, count, failures, last in rows}


async def apply_jobs(session: AsyncSession, scope: Scope, ids: Sequence[int] | None,
                     limit: int, where: Where = None) -> list[tuple[VoiceApplyJob, Enterprise]]:
    query = select(VoiceApplyJob, Enterprise).join(Enterprise, Enterprise.id == VoiceApplyJob.enterprise_id)
    return await _rows(session, _newest(query, VoiceApplyJob.id, scope, ids, limit, where=where))
