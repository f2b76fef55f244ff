"""Read-only, scoped queries for the console's Jobs and enterprise pages: durable work other than bulk jobs
(webhook deliveries, onboarding wizard runs, Teams syncs) of the enterprises under the staff member's node."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.fusion.models import FusionSubscription, FusionWizardRun
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal

LIMIT = 100


@dataclass(frozen=True)
class Work:
    kind: str
    customer: str
    status: str
    attempts: int | None
    last_error: str | None
    started: datetime
    finished: datetime | None


async def webhook_deliveries(session: AsyncSession, principal: Principal, enterprise_id: int) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).join(Enterprise, Enterprise.id == WebhookDelivery.enterprise_id).where(
        Enterprise.id == enterprise_id, Enterprise.reseller_id.in_(principal.reseller_scope))
    return list(await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(LIMIT)))


async def other_work(session: AsyncSession, principal: Principal) -> list[Work]:
    """Newest first, at most LIMIT of each kind."""
    in_scope = Enterprise.reseller_id.in_(principal.reseller_scope)
    work: list[Work] = []
    for delivery, name in (await session.execute(select(WebhookDelivery, Enterprise.enterprise_name).join(
            Enterprise, Enterprise.id == WebhookDelivery.enterprise_id).where(in_scope)
            .order_by(WebhookDelivery.id.desc()).limit(LIMIT))).all():
        work.append(Work("webhook delivery", name, delivery.status, delivery.attempts, delivery.last_error,
                         delivery.created_at, delivery.delivered_at))
    for run, name in (await session.execute(select(FusionWizardRun, Enterprise.enterprise_name).join(
            FusionSubscription, FusionSubscription.id == FusionWizardRun.subscription_id).join(
            Enterprise, Enterprise.id == FusionSubscription.enterprise_id).where(in_scope)
            .order_by(FusionWizardRun.id.desc()).limit(LIMIT))).all():
        work.append(Work("onboarding wizard", name, "running" if run.running else run.status, None, run.error,
                         run.started_at, run.finished_at))
    for job, name in (await session.execute(select(CallingJob, Enterprise.enterprise_name).join(
            Enterprise, Enterprise.id == CallingJob.enterprise_id).where(in_scope)
            .order_by(CallingJob.id.desc()).limit(LIMIT))).all():
        work.append(Work(job.kind.lower().replace("_", " "), name, job.status.lower(), None, job.error,
                         job.created_at, job.finished_at))
    return sorted(work, key=lambda w: w.started, reverse=True)
