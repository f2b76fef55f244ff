"""`teamsvoice jobs list|show|retry|cancel` for kinds other than bulk: consent webhook deliveries and drift event
deliveries (the job catalogue, domain/jobs/catalogue.py). A refused delivery is retried durably by the live server's
job engine and reaches the receiver; a delivered one cannot be retried and a pending one is cancelled, each said in
words; the audit log names the operator. A drift event delivery is seen by the reseller whose webhook it goes to
and those above it, not by another reseller."""

import asyncio
import getpass
import json
import uuid

import pytest
from sqlalchemy import select

from teamsvoice.core.errors import NotFound
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.jobs import catalogue
from tests.cli.support import UNREACHABLE, teamsvoice, teamsvoice_process, webhook_deliveries
from tests.support.database import in_session


async def listed_refused_and_pending(live, kind: str, refused: str, pending: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """`jobs list --kind` and `jobs show` of a refused and a pending delivery: the refused one can be retried and
    not cancelled, the pending one cancelled and not retried yet, each said in words. Answers the listed jobs."""
    listed = await teamsvoice(live, "jobs", "list", "--kind", kind, "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = {j["ref"]: j for j in json.loads(listed.stdout)}
    assert jobs[refused]["status"] == "refused" and jobs[refused]["canRetry"] and not jobs[refused]["canCancel"]
    assert jobs[pending]["canCancel"] and "still being delivered" in jobs[pending]["retry_refusal"]
    shown = await teamsvoice(live, "jobs", "show", refused)
    assert shown.returncode == 0, shown.stderr
    assert "retry: possible" in shown.stdout and "cancel: no, it has already ended (refused)" in shown.stdout
    return jobs


async def cancelled_and_retried(live, refused: str, pending: str) -> dict:  # type: ignore[no-untyped-def]
    """The ended delivery cannot be cancelled and the pending one not retried (each said in words); alice cancels
    the pending one; the refused one is retried and followed until the live server's job engine delivers it, and
    cannot be retried again. Cancel and retry run in processes of their own: they need the job engine's client.
    Answers the retried job as `jobs retry --follow --json` printed it."""
    not_now = await teamsvoice(live, "jobs", "cancel", refused)
    assert not_now.returncode == 2 and f"Job {refused} cannot be cancelled: it has already ended (refused)" in not_now.stderr
    not_yet = await teamsvoice(live, "jobs", "retry", pending)
    assert not_yet.returncode == 2 and f"Job {pending} cannot be retried: it is still being delivered" in not_yet.stderr
    cancelled = await asyncio.to_thread(teamsvoice_process, live, "--actor", "alice", "jobs", "cancel", pending, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled" and json.loads(cancelled.stdout)["canRetry"]
    ran = await asyncio.to_thread(teamsvoice_process, live, "jobs", "retry", refused, "--follow", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    after = json.loads(ran.stdout)
    assert after["status"] == "delivered" and after["last_error"] is None
    again = await teamsvoice(live, "jobs", "retry", refused)
    assert again.returncode == 2 and "it was delivered at" in again.stderr
    return after


async def audited(live, refused: str, pending: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    """The audit log's retries and cancels of the two jobs, oldest first: (action, job, actor, before, after,
    owning reseller, customer)."""
    async def entries(session) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
        return list(await session.scalars(select(AuditEntry).where(
            AuditEntry.action.in_(("job.retry", "job.cancel")), AuditEntry.object_id.in_((refused, pending))).order_by(AuditEntry.id)))

    return [(e.action, e.object_id, e.actor, e.before, e.after, e.owner_reseller_id, e.customer)
            for e in await in_session(live, entries)]


async def test_webhook_delivery_retry_and_cancel(live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    reseller_id = organisation.resellers[0].reseller_id
    name = f"Hooked {uuid.uuid4().hex[:6]}"
    refused_id, pending_id = await webhook_deliveries(live, reseller_id, receiver, name)
    refused, pending = f"webhook:{refused_id}", f"webhook:{pending_id}"

    jobs = await listed_refused_and_pending(live, "webhook", refused, pending)
    assert jobs[refused]["attempts"] == 1 and jobs[refused]["last_error"] == "HTTP 302: redirects are not followed"

    after = await cancelled_and_retried(live, refused, pending)
    assert after["attempts"] == 2
    assert [r for r in receiver.wait_for(1) if r["path"] == "/hook" and r["body"] == {"enterpriseName": name}]

    assert await audited(live, refused, pending) == [
        ("job.cancel", pending, "cli:alice", {"status": "pending"}, {"status": "cancelled"}, reseller_id, name),
        ("job.retry", refused, f"cli:{getpass.getuser()}", {"status": "refused"}, {"status": "pending"}, reseller_id, name)]

    unknown = await teamsvoice(live, "jobs", "show", "nightly:3")
    assert unknown.returncode == 2 and "the kind must be one of bulk, webhook" in unknown.stderr
    missing = await teamsvoice(live, "jobs", "retry", "webhook:999999999")
    assert missing.returncode == 2 and "Job webhook:999999999 not found" in missing.stderr


async def test_drift_event_delivery_listed_retried_cancelled_and_scoped(live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    import time

    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.voice_state import drift
    from teamsvoice.domain.voice_state.models import DriftDelivery, DriftWebhook

    mine, other = organisation.resellers[0].reseller_id, organisation.resellers[1].reseller_id
    above = organisation.master.reseller_id
    name, tenant = f"Drifting {uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))

    async def make(session) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
        enterprise = Enterprise(reseller_id=mine, enterprise_name=name, tenant_id=tenant)
        secret = keyring.encrypt("s3cret", purpose=drift.SECRET_PURPOSE)
        own = DriftWebhook(reseller_id=mine, url=f"{receiver.url}/drift", secret_encrypted=secret)
        upper = DriftWebhook(reseller_id=above, url=f"{UNREACHABLE}/drift", secret_encrypted=secret)
        session.add_all([enterprise, own, upper])
        await session.flush()
        body = json.dumps({"eventId": "7:drift.detected", "type": "drift.detected", "timestamp": int(time.time()),
                           "tenantId": tenant, "enterpriseId": enterprise.id, "event": {"id": 7}}, separators=(",", ":"))
        # Refused once at delivery time (its host was internal then); the one to the reseller above keeps failing.
        refused = DriftDelivery(webhook_id=own.id, body=body, status="refused", attempts=0,
                                last_error="the host resolves to a loopback address")
        pending = DriftDelivery(webhook_id=upper.id, body=body, status="pending", attempts=3, last_error="ConnectError: refused")
        session.add_all([refused, pending])
        await session.flush()
        return f"drift-webhook:{refused.id}", f"drift-webhook:{pending.id}", body

    refused, pending, body = await in_session(live, make)

    jobs = await listed_refused_and_pending(live, "drift-webhook", refused, pending)
    assert set(jobs) == {refused, pending}
    assert jobs[refused]["label"] == "drift event delivery" and jobs[refused]["customer"] == name
    assert jobs[refused]["title"] == f"drift.detected to {receiver.url.split('//')[1]}"
    assert jobs[refused]["attempts"] == 0 and jobs[refused]["last_error"] == "the host resolves to a loopback address"
    assert (jobs[refused]["reseller_id"], jobs[pending]["reseller_id"]) == (mine, above)
    shown = await teamsvoice(live, "jobs", "show", refused)
    assert "drift event delivery 'drift.detected to" in shown.stdout and f"of {name}: refused" in shown.stdout

    # Scope: the reseller whose webhook it goes to and those above it; not another reseller.
    async def refs(scope: list[int]) -> set[str]:
        return {j.ref for j in await in_session(live, lambda s: catalogue.list_jobs(s, scope, kind="drift-webhook"))}

    assert await refs([mine]) == {refused}
    assert await refs([above, mine, other]) == {refused, pending}
    assert await refs([other]) == set()
    for action in (catalogue.find, catalogue.retry, catalogue.cancel):
        with pytest.raises(NotFound, match=f"Job {refused} not found"):
            await in_session(live, lambda s: action(s, [other], refused))  # noqa: B023

    after = await cancelled_and_retried(live, refused, pending)
    assert after["attempts"] == 1
    receiver.wait_for(1)
    # Only this test's event counts: the receiver is one for the whole session (both backends), and keeps what
    # every earlier test, on either backend, had delivered to it.
    got = [r for r in receiver.received if r["path"] == "/drift" and isinstance(r["body"], dict) and r["body"].get("tenantId") == tenant]
    assert len(got) == 1  # once: the event as recorded, stamped with the try's time, signed with the reseller's secret
    sent = got[0]["body"]["timestamp"]
    assert got[0]["raw"] == drift.stamped(body, sent) and got[0]["headers"][drift.TIMESTAMP_HEADER.lower()] == str(sent)
    assert got[0]["headers"][drift.SIGNATURE_HEADER.lower()] == drift.sign("s3cret", got[0]["raw"])
    assert await audited(live, refused, pending) == [
        ("job.cancel", pending, "cli:alice", {"status": "pending"}, {"status": "cancelled"}, above, name),
        ("job.retry", refused, f"cli:{getpass.getuser()}", {"status": "refused"}, {"status": "pending"}, mine, name)]


async def test_resource_account_in_error_listed_with_its_customer_and_scoped(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A resource account's job (kept per Fusion subscription) is listed with the subscription's customer: one in
    error may be retried and has nothing to cancel; another reseller does not find it."""
    from teamsvoice.domain.teams_users.models import FusionResourceAccount
    from tests.support.database import add_customer

    mine, other = organisation.resellers[0].reseller_id, organisation.resellers[1].reseller_id
    name = f"Queued {uuid.uuid4().hex[:6]}"

    async def make(session) -> str:  # type: ignore[no-untyped-def]
        _enterprise_id, subscription_id = await add_customer(session, mine, name)
        account = FusionResourceAccount(subscription_id=subscription_id, user_principal_name=f"cq@{name[-6:]}.example",
                                        display_name="Support queue", account_type="call-queue", location="BE",
                                        status="error", error="No Teams Phone Resource Account licence")
        session.add(account)
        await session.flush()
        return f"resource-account:{account.id}"

    ref = await in_session(live, make)
    listed = await teamsvoice(live, "jobs", "list", "--kind", "resource-account", "--json")
    assert listed.returncode == 0, listed.stderr
    job = {j["ref"]: j for j in json.loads(listed.stdout)}[ref]
    assert (job["customer"], job["reseller_id"], job["status"]) == (name, mine, "error")
    assert job["title"] == f"call-queue cq@{name[-6:]}.example" and job["last_error"] == "No Teams Phone Resource Account licence"
    assert job["canRetry"] and not job["canCancel"]
    assert ref in {j.ref for j in await in_session(live, lambda s: catalogue.list_jobs(s, [mine], kind="resource-account"))}
    assert ref not in {j.ref for j in await in_session(live, lambda s: catalogue.list_jobs(s, [other], kind="resource-account"))}
    with pytest.raises(NotFound, match=f"Job {ref} not found"):
        await in_session(live, lambda s: catalogue.find(s, [other], ref))
