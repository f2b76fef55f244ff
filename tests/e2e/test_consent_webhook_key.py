"""A consent webhook's delivery carries its key (`Idempotency-Key`) at every POST: a delivery sent again after the
outcome of a try was lost (the worker died after the receiver answered) is told from a new one by the receiver; a
transient database failure while the outcome is recorded no longer sends it again at all."""

import sqlite3
import time
import uuid

import anyio
from dbos import DBOS
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.consent.service import WEBHOOK_PURPOSE
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.jobs import webhooks
from teamsvoice.jobs.runtime import job_context


def _deliveries(organisation, receiver, paths: list[str]) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Pending consent deliveries to the receiver at `paths` (one each): their ids and workflow ids."""
    ctx = job_context()
    reseller_id = organisation.resellers[0].reseller_id
    with Session(ctx.engine) as session, session.begin():
        reseller = session.get(Reseller, reseller_id)
        reseller.registered_redirect_urls = [receiver.url + "/"]
        enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=f"Keyed {uuid.uuid4().hex[:6]}")
        session.add(enterprise)
        session.flush()
        rows = [WebhookDelivery(enterprise_id=enterprise.id, url=receiver.url + path,
                                payload_encrypted=ctx.keyring.encrypt('{"actionType": "REGISTRATION"}', purpose=WEBHOOK_PURPOSE))
                for path in paths]
        session.add_all(rows)
        session.flush()
        return [(row.id, f"webhook-{row.job_key}") for row in rows]


def _delivered(delivery_id: int) -> WebhookDelivery:
    deadline = time.monotonic() + 60
    while True:
        with Session(job_context().engine) as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row.status != "pending" or time.monotonic() > deadline:
                return row
        time.sleep(0.05)


async def test_every_post_of_a_delivery_carries_its_key_and_each_delivery_its_own(live, organisation, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    again, once = f"/keyed-again-{tag}", f"/keyed-once-{tag}"
    [(first, first_workflow), (second, _)] = _deliveries(organisation, receiver, [again, once])
    real, lost = webhooks.utcnow, []

    def worker_dies_once():  # type: ignore[no-untyped-def]
        # The receiver has answered the first POST; its outcome is lost before it is recorded, as when the worker dies.
        if DBOS.workflow_id == first_workflow and not lost:
            lost.append(1)
            raise RuntimeError("the worker died")
        return real()

    monkeypatch.setattr(webhooks, "utcnow", worker_dies_once)
    for delivery_id in (first, second):
        await webhooks.enqueue_delivery(delivery_id)
    for delivery_id in (first, second):
        assert (await anyio.to_thread.run_sync(_delivered, delivery_id)).status == "delivered"
    posted_again = receiver.at(again, count=2)
    keys = {post["headers"].get("idempotency-key") for post in posted_again}
    assert len(posted_again) == 2 and len(keys) == 1 and None not in keys, posted_again
    [posted_once] = receiver.at(once)
    assert posted_once["headers"].get("idempotency-key") not in keys | {None}, posted_once
    assert posted_again[0]["raw"] == posted_again[1]["raw"] == posted_once["raw"]  # the same body: only the key tells


async def test_a_transient_database_failure_after_the_post_sends_it_once(live, organisation, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = f"/keyed-locked-{uuid.uuid4().hex[:8]}"
    [(delivery_id, workflow_id)] = _deliveries(organisation, receiver, [path])
    real, calls = webhooks.sync_transaction, []

    def locked_when_recorded(engine):  # type: ignore[no-untyped-def]
        if DBOS.workflow_id == workflow_id:
            calls.append(1)
            if len(calls) == 2:  # the transaction that records the answer, after the POST
                raise sa_exc.OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))
        return real(engine)

    monkeypatch.setattr(webhooks, "sync_transaction", locked_when_recorded)
    await webhooks.enqueue_delivery(delivery_id)
    row = await anyio.to_thread.run_sync(_delivered, delivery_id)
    assert row.status == "delivered" and row.attempts == 1, (row.status, row.attempts)
    assert len(calls) >= 2  # (the failure did happen)
    assert len([r for r in receiver.received if r["path"] == path]) == 1
