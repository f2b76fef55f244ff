"""Consent records: the single-use sign-in requests handed out (`ActionRequest`), the consents an enterprise's
Global Administrator granted (`EnterpriseConsent`) and the webhooks owed to the provider (`WebhookDelivery`,
delivered by `jobs/webhooks.py`)."""

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.consent.models import ActionRequest, EnterpriseConsent, WebhookDelivery


def add_action_request(session: AsyncSession, request: ActionRequest) -> None:
    session.add(request)


async def action_request_by_state(session: AsyncSession, state_key: str) -> ActionRequest | None:
    return await session.scalar(select(ActionRequest).where(ActionRequest.state_key == state_key))


async def burn_state(session: AsyncSession, request: ActionRequest) -> bool:
    """Marks the request's state used, in one conditional UPDATE: False when another answer used it first (two
    posts of one answer at the same moment both read it unused)."""
    burnt = await session.execute(update(ActionRequest).where(ActionRequest.id == request.id, ActionRequest.used_at.is_(None))
                                  .values(used_at=utcnow()))
    return burnt.rowcount == 1  # type: ignore[attr-defined]


async def forget_consents_of_other_tenants(session: AsyncSession, enterprise_id: int, tenant_id: str) -> None:
    """The enterprise's consents granted in another tenant than `tenant_id` (its registration moved before it was
    complete: what the other tenant's administrator granted says nothing of this one)."""
    for consent in await consents_of(session, enterprise_id):
        if consent.tenant_id != tenant_id:
            await session.delete(consent)


async def action_request(session: AsyncSession, request_id: int) -> ActionRequest | None:
    return await session.get(ActionRequest, request_id)


async def record_consent(session: AsyncSession, enterprise_id: int, consent_name: str, tenant_id: str, upn: str) -> None:
    """The consent as granted now by `upn` in `tenant_id` (granted again: tenant, who and when are updated)."""
    consent = await session.scalar(select(EnterpriseConsent).where(
        EnterpriseConsent.enterprise_id == enterprise_id, EnterpriseConsent.consent_name == consent_name))
    if consent is None:
        session.add(EnterpriseConsent(enterprise_id=enterprise_id, consent_name=consent_name, tenant_id=tenant_id,
                                      granted_by=upn))
    else:
        consent.tenant_id, consent.granted_by, consent.granted_at = tenant_id, upn, utcnow()


async def consents_of(session: AsyncSession, enterprise_id: int) -> list[EnterpriseConsent]:
    query = select(EnterpriseConsent).where(EnterpriseConsent.enterprise_id == enterprise_id).order_by(EnterpriseConsent.id)
    return list((await session.scalars(query)).all())


async def add_webhook_delivery(session: AsyncSession, enterprise_id: int, url: str, payload_encrypted: str) -> WebhookDelivery:
    """A webhook owed to the provider, flushed (it has its id); the caller enqueues it once committed."""
    delivery = WebhookDelivery(enterprise_id=enterprise_id, url=url, payload_encrypted=payload_encrypted)
    session.add(delivery)
    await session.flush()
    return delivery


def delivery_key(session: Session, delivery_id: int) -> str | None:
    """A webhook delivery's never-reused key (its workflow id is derived from it); None if there is no such row."""
    return session.scalar(select(WebhookDelivery.job_key).where(WebhookDelivery.id == delivery_id))


def pending_delivery_ids(session: Session) -> list[int]:
    return list(session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending")))
