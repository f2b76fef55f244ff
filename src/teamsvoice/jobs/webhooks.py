"""Delivery of consent outcomes to the provider's redirectUrl: retried with capped backoff until it lands."""

import anyio
import httpx
from dbos import DBOS
from sqlalchemy import select
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.consent.service import WEBHOOK_PURPOSE
from teamsvoice.jobs.runtime import job_context, start_once


@DBOS.step(name="post_webhook")
def post_webhook(delivery_id: int) -> bool:
    """One attempt. True once the receiver answered 2xx (or the delivery was already done)."""
    ctx = job_context()
    with Session(ctx.engine) as session, session.begin():
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status == "delivered":
            return True
        url, body = delivery.url, ctx.keyring.decrypt(delivery.payload_encrypted, purpose=WEBHOOK_PURPOSE)
    error: str | None = None
    try:
        response = ctx.http.post(url, content=body, headers={"Content-Type": "application/json"})
        if not response.is_success:
            error = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    with Session(ctx.engine) as session, session.begin():
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
    return error is None


@DBOS.workflow(name="deliver_webhook", max_recovery_attempts=None)
def deliver_webhook(delivery_id: int) -> int:
    settings = job_context().settings
    delay, attempts = settings.webhook_retry_initial_seconds, 1
    while not post_webhook(delivery_id):
        DBOS.sleep(delay)
        delay = min(delay * 2, settings.webhook_retry_max_seconds)
        attempts += 1
    return attempts


def _start(delivery_id: int) -> None:
    with Session(job_context().engine) as session:
        job_key = session.scalar(select(WebhookDelivery.job_key).where(WebhookDelivery.id == delivery_id))
    start_once(f"webhook-{job_key}", deliver_webhook, delivery_id)


async def enqueue_delivery(delivery_id: int) -> None:
    """Starting twice under the same workflow id is a no-op, so this is safe to repeat."""
    await anyio.to_thread.run_sync(_start, delivery_id)


def resume_orphaned() -> int:
    """A crash between commit and enqueue leaves a pending row with no workflow; start those (idempotent)."""
    with Session(job_context().engine) as session:
        pending = list(session.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending")))
    for delivery_id in pending:
        _start(delivery_id)
    return len(pending)
