"""Delivery of consent outcomes to the provider's redirectUrl: retried with capped backoff until it lands."""

import logging

import anyio
import httpx
from dbos import DBOS

from teamsvoice.core import destinations
from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_transaction
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.consent import repository as consent_repository
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.consent.redirects import check_redirect_url
from teamsvoice.domain.consent.service import WEBHOOK_KEY_HEADER, WEBHOOK_PURPOSE
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.jobs.runtime import (
    delivery_attempt, durable_step, job_context, retrying_transient, start_once, until_delivered,
)

logger = logging.getLogger("teamsvoice.security")


@durable_step("post_webhook")
def post_webhook(delivery_id: int) -> bool:
    """One attempt. True once the delivery is over: the receiver answered 2xx, or the URL is no longer
    registered, or its host resolves to an internal address the deployment does not allow, or the receiver
    redirected (the payload carries a Microsoft token: it goes nowhere else). An attempt that fails with a defect
    (a payload the keyring cannot decrypt, say) is a failed try like any other, its error recorded: it ended the
    delivery's workflow, and the delivery stayed pending with no try ever again. Every POST carries the delivery's
    key (`WEBHOOK_KEY_HEADER`): a try whose outcome was lost after the receiver answered (the worker died) is sent
    again, and the receiver tells it by the key it has seen."""
    return delivery_attempt(_post_webhook, WebhookDelivery, delivery_id, "webhook delivery")


def _post_webhook(delivery_id: int) -> bool:
    ctx = job_context()
    with sync_transaction(ctx.engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return True
        enterprise = session.get(Enterprise, delivery.enterprise_id)
        reseller = session.get(Reseller, enterprise.reseller_id) if enterprise is not None else None
        try:
            # The registration may have been withdrawn, or the row written by older, laxer code: check again.
            url = check_redirect_url(delivery.url, reseller.registered_redirect_urls if reseller else [],
                                     allow_loopback=ctx.settings.allow_loopback_redirects)
        except ValidationFailed as exc:
            delivery.status, delivery.last_error = "refused", exc.message
            logger.warning("security: webhook delivery %s refused at delivery time: %s", delivery_id, exc.message)
            return True
        body = ctx.keyring.decrypt(delivery.payload_encrypted, purpose=WEBHOOK_PURPOSE)
        key = delivery.job_key
    error: str | None = None
    final = sent = False
    try:
        response = destinations.post(ctx.http, url, allow_internal=ctx.settings.allow_loopback_redirects, content=body,
                                     headers={"Content-Type": "application/json", WEBHOOK_KEY_HEADER: key})
        sent = True
        if response.is_redirect:
            error, final = f"HTTP {response.status_code}: redirects are not followed", True
        elif not response.is_success:
            error = f"HTTP {response.status_code}"
    except destinations.RefusedDestination as exc:
        error, final = exc.message, True
        logger.warning("security: webhook delivery %s refused at delivery time: %s", delivery_id, exc.message)
    except httpx.HTTPError as exc:
        error, sent = f"{type(exc).__name__}: {exc}", True
    _record_try(delivery_id, error, sent=sent, final=final)
    return error is None or final


@retrying_transient("post_webhook_outcome")
def _record_try(delivery_id: int, error: str | None, *, sent: bool, final: bool) -> None:
    """A try's outcome. A transient database failure runs this again, not the whole try: the step run again POSTed
    the delivery a second time, though the receiver had answered."""
    with sync_transaction(job_context().engine) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 1 if sent else 0
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif final:
            delivery.status = "refused"


@DBOS.workflow(name="deliver_webhook", max_recovery_attempts=None)
def deliver_webhook(delivery_id: int) -> int:
    return until_delivered(post_webhook, delivery_id)


def _start(delivery_id: int) -> None:
    with sync_transaction(job_context().engine) as session:
        job_key = consent_repository.delivery_key(session, delivery_id)
    start_once(f"webhook-{job_key}", deliver_webhook, delivery_id)


async def enqueue_delivery(delivery_id: int) -> None:
    """Starting twice under the same workflow id is a no-op, so this is safe to repeat."""
    await anyio.to_thread.run_sync(_start, delivery_id)


def resume_orphaned() -> int:
    """A crash between commit and enqueue leaves a pending row with no workflow; start those (idempotent)."""
    with sync_transaction(job_context().engine) as session:
        pending = consent_repository.pending_delivery_ids(session)
    for delivery_id in pending:
        _start(delivery_id)
    return len(pending)


resume_unstarted = resume_orphaned  # (all it starts is work committed but never enqueued: runtime.sweep_unstarted_work)
