"""`teamsvoice jobs show|retry --follow` and `bulk import`, which follow a job to its end: the exit status says how it
ended, and the lines printed while a job waits say what changed; `jobs list` and what it shows. Jobs are made as
records (nothing enqueues them)."""

import asyncio
import json
import threading
import uuid
from typing import Any

from teamsvoice import operator_cli
from teamsvoice.domain.consent.models import WebhookDelivery
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from tests.cli.support import teamsvoice
from tests.support.database import add_customer, in_session


async def customer(live: Any, reseller_id: int) -> tuple[int, int]:  # (enterprise id, subscription id)
    name = f"Followed {uuid.uuid4().hex[:6]}"
    return await in_session(live, lambda session: add_customer(session, reseller_id, name))


async def delivery(live: Any, enterprise_id: int, status: str) -> int:
    async def make(session: Any) -> int:
        row = WebhookDelivery(enterprise_id=enterprise_id, url="http://127.0.0.1:9/hook", payload_encrypted="x",
                              status=status, attempts=1)
        session.add(row)
        await session.flush()
        return row.id

    return await in_session(live, make)


async def test_a_followed_job_that_was_cancelled_is_exit_1(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A cancelled bulk job (0 of 30 done) followed by `bulk import` or `jobs show --follow` was exit 0."""
    enterprise_id, subscription_id = await customer(live, organisation.resellers[0].reseller_id)

    async def cancelled_job(session: Any) -> int:
        job = FusionBulkJob(subscription_id=subscription_id, title="stopped", job_id="1", total_count=2, status="cancelled")
        session.add(job)
        await session.flush()
        session.add_all([FusionBulkItem(job_id=job.id, position=n, upn=f"u{n}@x.example", data={}, status="cancelled")
                         for n in range(2)])
        return job.id

    job_id = await in_session(live, cancelled_job)
    for json_option in ([], ["--json"]):
        followed = await teamsvoice(live, "jobs", "show", str(job_id), "--follow", *json_option)
        assert followed.returncode == 1, followed.stdout + followed.stderr
        assert followed.stderr.strip() == f"teamsvoice: bulk job {job_id} was cancelled"
    shown = await teamsvoice(live, "jobs", "show", str(job_id))  # not followed: shown, exit 0
    assert shown.returncode == 0 and "cancelled" in shown.stdout

    webhook = f"webhook:{await delivery(live, enterprise_id, 'cancelled')}"
    followed = await teamsvoice(live, "jobs", "show", webhook, "--follow")
    assert followed.returncode == 1 and followed.stderr.strip() == f"teamsvoice: {webhook} was cancelled"
    assert f"{webhook} webhook delivery" in followed.stdout


async def test_following_a_waiting_job_prints_what_changes(live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same "pending" line was printed every half second while the job waited."""
    enterprise_id, _ = await customer(live, organisation.resellers[0].reseller_id)
    ref = f"webhook:{await delivery(live, enterprise_id, 'pending')}"
    polls, polled_thrice = [0], threading.Event()
    rendered = operator_cli._rendered

    async def counted(session: Any, shown: str) -> dict[str, Any]:  # (the command runs in a thread of its own)
        polls[0] += 1
        if polls[0] >= 3:
            polled_thrice.set()
        return await rendered(session, shown)
    monkeypatch.setattr(operator_cli, "_rendered", counted)
    following = asyncio.create_task(teamsvoice(live, "jobs", "show", ref, "--follow"))
    # Three polls of the waiting job, however long the command takes to start on a busy machine (not a fixed 2.5 s).
    assert await asyncio.to_thread(polled_thrice.wait, 60)

    async def delivered(session: Any) -> None:
        (await session.get(WebhookDelivery, int(ref.split(":")[1]))).status = "delivered"

    await in_session(live, delivered)
    followed = await asyncio.wait_for(following, 30)
    assert followed.returncode == 0, followed.stderr
    assert [line for line in followed.stdout.splitlines() if line.startswith(f"{ref}:")] == [f"{ref}: pending"]
    assert f"{ref} webhook delivery" in followed.stdout and ": delivered" in followed.stdout


async def test_jobs_list_filters_by_status_before_its_limit(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """`--status` filtered only the newest 100 jobs of each kind: an older job in that status was never listed. A cut
    list says so; an unknown status is refused as an unknown kind is."""
    enterprise_id, _ = await customer(live, organisation.resellers[0].reseller_id)
    old = f"webhook:{await delivery(live, enterprise_id, 'refused')}"

    async def newer(session: Any) -> None:
        session.add_all([WebhookDelivery(enterprise_id=enterprise_id, url="http://127.0.0.1:9/hook", payload_encrypted="x",
                                         status="delivered", attempts=1) for _ in range(100)])

    await in_session(live, newer)
    listed = await teamsvoice(live, "jobs", "list", "--status", "refused", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [j["ref"] for j in json.loads(listed.stdout)] == [old] and not listed.stderr
    cut = await teamsvoice(live, "jobs", "list", "--kind", "webhook", "--status", "delivered", "--limit", "5")
    assert cut.returncode == 0 and cut.stdout.count("delivered") == 5
    assert cut.stdout.strip().endswith("Only the newest 5 jobs of each kind are listed: there are more (--limit N for more)")
    whole = await teamsvoice(live, "jobs", "list", "--kind", "webhook", "--limit", "101", "--json")
    assert len(json.loads(whole.stdout)) == 101 and not whole.stderr

    refused = await teamsvoice(live, "jobs", "list", "--status", "nope")
    assert refused.returncode == 2 and refused.stderr.strip().startswith("teamsvoice: status: must be one of active, cancelled,")
    not_of_kind = await teamsvoice(live, "jobs", "list", "--kind", "wizard", "--status", "pending")
    assert not_of_kind.returncode == 2
    assert not_of_kind.stderr.strip() == "teamsvoice: status: must be one of cancelled, completed, failed, running for wizard jobs"


async def test_a_retrying_item_shows_its_last_error(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """`jobs show` (table) and `jobs list` showed an empty error for an item waiting to be tried again, though
    `--json` had its lastError; it is shown, marked as retrying. A final error still wins in `jobs list`."""
    _, subscription_id = await customer(live, organisation.resellers[0].reseller_id)
    unavailable = {"kind": "upstream_error", "code": "upstream_error", "message": "Microsoft answered 503", "status": 503,
                   "retryable": True}

    async def running_job(session: Any, error: dict | None = None) -> int:
        job = FusionBulkJob(subscription_id=subscription_id, title="waits", job_id="1", total_count=2, status="running")
        session.add(job)
        await session.flush()
        session.add(FusionBulkItem(job_id=job.id, position=0, upn="waits@x.example", data={}, status="pending", attempts=2,
                                   details={"lastError": unavailable, "retryInSeconds": 4.0}))
        session.add(FusionBulkItem(job_id=job.id, position=1, upn="failed@x.example", data={},
                                   status="error" if error else "pending", attempts=1, error=error))
        return job.id

    waiting = await in_session(live, running_job)
    failed = await in_session(live, lambda s: running_job(s, {"kind": "not_found", "code": "x", "message": "No such user"}))
    shown = await teamsvoice(live, "jobs", "show", str(waiting))
    assert shown.returncode == 0, shown.stderr
    assert [line for line in shown.stdout.splitlines() if "waits@x.example" in line][0].rstrip(" │").endswith(
        "retrying after: Microsoft answered 503")
    listed = {j["ref"]: j for j in json.loads((await teamsvoice(live, "jobs", "list", "--kind", "bulk", "--json")).stdout)}
    assert listed[f"bulk:{waiting}"]["last_error"] == "retrying after: Microsoft answered 503"
    assert listed[f"bulk:{failed}"]["last_error"] == "No such user"
    table = await teamsvoice(live, "jobs", "list", "--kind", "bulk")
    assert "retrying after: Microsoft answered 503" in table.stdout
