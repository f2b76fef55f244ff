"""Read-only, scoped queries for the console's enterprise page: the webhook deliveries of an enterprise under the
staff member's node (the Jobs page lists every kind of job through domain/jobs/catalogue.py)."""


from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal

LIMIT = 100


async def webhook_deliveries(session: AsyncSession, principal: Principal, enterprise_id: int) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).join(Enterprise, Enterprise.id == WebhookDelivery.enterprise_id).where(
        Enterprise.id == enterprise_id, Enterprise.reseller_id.in_(principal.reseller_scope))
    return list(await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(LIMIT)))
