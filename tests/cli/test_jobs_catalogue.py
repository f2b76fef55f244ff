"""`teamsvoice jobs list|show|retry|cancel` for a kind other than bulk: consent webhook deliveries (the job
catalogue, domain/jobs/catalogue.py). A refused delivery is retried durably by the live server's job engine and
reaches the receiver; a delivered one cannot be retried and a pending one is cancelled, each said in words; the
audit log names the operator."""

import asyncio
import getpass
import json
import uuid

from sqlalchemy import select

from teamsvoice.domain.audit.models import AuditEntry
from tests.cli.support import teamsvoice, teamsvoice_process, webhook_deliveries
from tests.support.database import in_session


async def test_webhook_delivery_retry_and_cancel(live, organisation, receiver) -> None:  # type: ignore[no-untyped-def]
    reseller_id = organisation.resellers[0].reseller_id
    name = f"Hooked {uuid.uuid4().hex[:6]}"
    refused_id, pending_id = await webhook_deliveries(live, reseller_id, receiver, name)
    refused, pending = f"webhook:{refused_id}", f"webhook:{pending_id}"

    listed = await teamsvoice(live, "jobs", "list", "--kind", "webhook", "--json")
    assert listed.returncode == 0, listed.stderr
    jobs = {j["ref"]: j for j in json.loads(listed.stdout)}
    assert jobs[refused]["status"] == "refused" and jobs[refused]["canRetry"] and not jobs[refused]["canCancel"]
    assert jobs[refused]["attempts"] == 1 and jobs[refused]["last_error"] == "HTTP 302: redirects are not followed"
    assert jobs[pending]["canCancel"] and "still being delivered" in jobs[pending]["retry_refusal"]
    shown = await teamsvoice(live, "jobs", "show", refused)
    assert shown.returncode == 0 and "retry: possible" in shown.stdout and "cancel: no, it has already ended (refused)" in shown.stdout

    not_now = await teamsvoice(live, "jobs", "cancel", refused)
    assert not_now.returncode == 2 and f"Job {refused} cannot be cancelled: it has already ended (refused)" in not_now.stderr
    # Stopping its workflow needs the job engine's client: a process of its own, as for retry.
    cancelled = await asyncio.to_thread(teamsvoice_process, live, "--actor", "alice", "jobs", "cancel", pending, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["status"] == "cancelled" and json.loads(cancelled.stdout)["canRetry"]

    # Retried in a process of its own (it hands the work to the job engine); the live server delivers it.
    ran = await asyncio.to_thread(teamsvoice_process, live, "jobs", "retry", refused, "--follow", "--json")
    assert ran.returncode == 0, ran.stderr + ran.stdout
    after = json.loads(ran.stdout)
    assert after["status"] == "delivered" and after["attempts"] == 2 and after["last_error"] is None
    assert [r for r in receiver.wait_for(1) if r["path"] == "/hook" and r["body"] == {"enterpriseName": name}]
    again = await teamsvoice(live, "jobs", "retry", refused)
    assert again.returncode == 2 and "it was delivered at" in again.stderr

    async def entries(session) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action.in_(("job.retry", "job.cancel")),
                                                                   AuditEntry.customer == name).order_by(AuditEntry.id)))

    logged = await in_session(live, entries)
    assert [(e.action, e.object_id, e.actor, e.before, e.after) for e in logged] == [
        ("job.cancel", pending, "cli:alice", {"status": "pending"}, {"status": "cancelled"}),
        ("job.retry", refused, f"cli:{getpass.getuser()}", {"status": "refused"}, {"status": "pending"})]
    assert {e.owner_reseller_id for e in logged} == {reseller_id}

    unknown = await teamsvoice(live, "jobs", "show", "nightly:3")
    assert unknown.returncode == 2 and "the kind must be one of bulk, webhook" in unknown.stderr
    missing = await teamsvoice(live, "jobs", "retry", "webhook:999999999")
    assert missing.returncode == 2 and "Job webhook:999999999 not found" in missing.stderr
