"""Read-only, scoped queries for the console's enterprise page: the webhook deliveries of an enterprise under the
staff member's node (the Jobs page lists every kind of job through domain/jobs/catalogue.py)."""

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.jobs import repository as jobs
from teamsvoice.domain.orgs.principal import Principal

LIMIT = 100


async def webhook_deliveries(session: AsyncSession, principal: Principal, enterprise_id: int) -> list[WebhookDelivery]:
    return await jobs.consent_deliveries_of(session, enterprise_id, list(principal.reseller_scope), LIMIT)
