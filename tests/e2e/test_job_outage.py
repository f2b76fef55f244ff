"""A Microsoft outage during a bulk job is never a final error: items wait, show why, and succeed once
Microsoft answers again. A cancelled job applies nothing more, and an item it found done is reported done. Nor is the
database dropping every connection mid-job (PostgreSQL restarting)."""

import asyncio
import csv
import dataclasses
import io
import time
from functools import partial

import httpx
import pytest
from dbos import DBOS
from sqlalchemy import select
from sqlalchemy.orm import Session

from teamsvoice.core.db import transaction
from teamsvoice.domain.teams_users import bulk, repository_bulk_run
from teamsvoice.domain.teams_users.bulk_csv import results_csv
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob
from teamsvoice.jobs.runtime import job_context, until_microsoft_answers
from tests.api.fusion.users_support import Onboarded, onboard
from tests.support.postgres import end_sessions

USERS = 6


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, tenant_index=1)


async def _faults(sub: Onboarded, method: str, body: dict | None = None) -> dict:
    emulator = sub.world.live.emulator
    async with httpx.AsyncClient(verify=str(emulator.ca_cert_path)) as admin:
        response = await admin.request(method, f"{emulator.url}/_admin/faults", json=body)
        assert response.status_code == 200, response.text
        return response.json()


async def _details(sub: Onboarded, job_id: int) -> dict:
    response = await sub.world.client.get(f"{sub.path}/msteams/users/bulk/{job_id}", headers=sub.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _submit(sub: Onboarded, users: list[dict], numbers: list[str], name: str) -> int:
    data = [{"upn": u["msTeams"]["userPrincipalName"], "displayName": u["msTeams"]["displayName"], "number": n,
             "vrp": "teamsvoice"} for u, n in zip(users, numbers)]
    accepted = await sub.world.client.put(f"{sub.path}/msteams/users/bulk", json={"name": name, "data": data},
                                          headers={**sub.headers, "Prefer": "respond-async"})
    assert accepted.status_code == 202, accepted.text
    return accepted.json()["id"]


async def _until_the_jobs_workflows_end(job_id: int) -> None:
    """Until the job's workflow and its items' (`fusion-bulk-<job key>`, `...-item-<id>`) have all ended."""
    with Session(job_context().engine) as session:
        key = session.scalar(select(FusionBulkJob.job_key).where(FusionBulkJob.id == job_id))
    deadline = time.monotonic() + 90
    while True:
        workflows = await asyncio.to_thread(DBOS.list_workflows, workflow_id_prefix=f"fusion-bulk-{key}",
                                            load_input=False, load_output=False)
        running = [w.workflow_id for w in workflows if w.status in ("PENDING", "ENQUEUED")]
        if workflows and not running:
            return
        assert time.monotonic() < deadline, running
        await asyncio.sleep(0.2)


async def test_outage_mid_job_ends_every_item_in_success(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:USERS]
    # The connector gives up on one call quickly here, so that the job's own waiting is what carries the items.
    connector = job_context().connector
    monkeypatch.setattr(connector, "retry", dataclasses.replace(connector.retry, max_attempts=1))
    await _faults(sub, "PUT", {"errorRate5xx": 1.0})
    try:
        job_id = await _submit(sub, users, sub.numbers[:USERS], "outage")
        deadline = time.monotonic() + 30
        while True:
            details = await _details(sub, job_id)
            waiting = [i for i in details["job_items"] if i["status"] == "pending" and "lastError" in i]
            if len(waiting) == USERS or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert details["status"] == "running" and details["error_count"] == 0, details
        assert len(waiting) == USERS, details["job_items"]  # every item is waiting, none has failed
        assert all(i["attempts"] >= 1 and i["lastError"]["reason"] for i in waiting)
    finally:
        await _faults(sub, "DELETE")
    deadline = time.monotonic() + 90
    while (details := await _details(sub, job_id))["status"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
    assert details["status"] == "success", details["job_items"]
    assert details["success_count"] == USERS and details["error_count"] == 0
    for user, number in zip(users, sub.numbers):
        assert await sub.teams_numbers(user["msTeams"]["id"]) == [number]
    metrics = (await sub.world.client.get("/metrics")).text
    assert 'teamsvoice_job_retries_total{workflow="fusion_bulk_item"}' in metrics
    assert 'teamsvoice_bulk_items_total{status="success"}' in metrics


async def test_a_cancelled_job_applies_nothing_more(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:USERS]
    # An item whose attempt began before the cancel landed is in flight: were its call still being retried inside the
    # connector once Microsoft answered again, it would end with its outcome, as it should ("what was done stays
    # done"). Here each call is tried once, so such an item waits as the job does and finds itself cancelled.
    connector = job_context().connector
    monkeypatch.setattr(connector, "retry", dataclasses.replace(connector.retry, max_attempts=1))
    await _faults(sub, "PUT", {"errorRate5xx": 1.0})  # nothing can be applied until the job is cancelled
    try:
        job_id = await _submit(sub, users, sub.numbers[10:10 + USERS], "cancelled")
        cancelled = await sub.world.client.post(f"{sub.path}/msteams/users/bulk/{job_id}/cancel", headers=sub.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["cancelled_count"] == USERS
        again = await sub.world.client.post(f"{sub.path}/msteams/users/bulk/{job_id}/cancel", headers=sub.headers)
        assert again.status_code == 400 and again.json()["error"]["code"] == 2089
        await _until_the_jobs_workflows_end(job_id)  # items that were waiting tried again and found themselves cancelled
    finally:
        await _faults(sub, "DELETE")
    details = await _details(sub, job_id)
    assert details["status"] == "cancelled" and {i["status"] for i in details["job_items"]} == {"cancelled"}
    for user, number in zip(users, sub.numbers[10:10 + USERS]):  # (users may hold numbers of earlier tests)
        assert number not in await sub.teams_numbers(user["msTeams"]["id"])


async def test_an_item_done_when_the_cancel_lands_ends_in_success(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A probe cancelled a 200-user job 15 s in: 64 users had their number and policy in Microsoft and their records
    updated, yet their items said cancelled (success 0, cancelled 200). Here the cancel lands while the first item's
    changes are in Microsoft and not yet recorded: that item ends in success and the job counts it so; the second,
    not started, is the one cancelled and applies nothing. (The items run here one after the other, as the job's
    workflow would run them, so that the cancel lands at a known point.)"""
    first, second = [u["msTeams"] for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:2]
    async with sub.as_a_worker() as (sessions, access, connector):
        async with transaction(sessions) as session:
            job = await bulk.create_job(session, access, "cancel in flight", [
                {"upn": user["userPrincipalName"], "number": number, "vrp": "teamsvoice"}
                for user, number in zip((first, second), sub.numbers[:2])])
            await repository_bulk_run.start_job(session, job.id)  # running: the job engine's sweep leaves it alone
        async with transaction(sessions) as session:
            ids = list(await session.scalars(select(FusionBulkItem.id).where(
                FusionBulkItem.job_id == job.id).order_by(FusionBulkItem.position)))
        real_settle, cancels = bulk._settle, []

        async def settle(*args, **kwargs):  # type: ignore[no-untyped-def]
            if not cancels and args[1] == job.id:  # the first item's changes are in Microsoft, its outcome not yet recorded
                cancels.append(await sub.world.client.post(f"{sub.path}/msteams/users/bulk/{job.id}/cancel", headers=sub.headers))
            await real_settle(*args, **kwargs)

        monkeypatch.setattr(bulk, "_settle", settle)
        connection = connector.connect(access.require_ms_tenant())
        retry = partial(until_microsoft_answers, workflow="test_job_outage")
        outcomes = [await bulk.apply_item(sessions, access, connection, item_id, {}, retry) for item_id in ids]
        results = list(csv.DictReader(io.StringIO("".join([c async for c in results_csv(bulk.items(sessions, job.id))]))))
    assert len(cancels) == 1 and cancels[0].status_code == 200, cancels
    assert outcomes == ["success", "cancelled"]
    details = await _details(sub, job.id)
    assert {k: details[k] for k in ("status", "success_count", "error_count", "processed_count", "cancelled_count")} == {
        "status": "cancelled", "success_count": 1, "error_count": 0, "processed_count": 1, "cancelled_count": 1}
    assert [(i["status"], i["attempts"]) for i in details["job_items"]] == [("success", 1), ("cancelled", 0)]
    assert [(r["upn"], r["status"]) for r in results] == [(first["userPrincipalName"], "success"),
                                                          (second["userPrincipalName"], "cancelled")]
    assert await sub.teams_numbers(first["id"]) == [sub.numbers[0]]
    assert sub.numbers[1] not in await sub.teams_numbers(second["id"])


async def test_a_database_locked_past_its_timeout_is_not_an_items_outcome(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """SQLite busy past its timeout (or no pooled connection in time) inside an item: the item's work runs again
    (jobs/runtime.retrying_transient, `durable_step`'s rule); it succeeds instead of ending as an "Unexpected error"."""
    from sqlalchemy.exc import OperationalError

    from teamsvoice.domain.teams_users import service

    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:2]
    real_apply, locked = service.apply_update, []

    async def apply_update(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(locked) < 2:
            locked.append(1)
            raise OperationalError("UPDATE teams_voice_users ...", {}, Exception("database is locked"))
        return await real_apply(*args, **kwargs)

    monkeypatch.setattr(service, "apply_update", apply_update)
    job_id = await _submit(sub, users, sub.numbers[10:12], "locked")
    deadline = time.monotonic() + 60
    while (details := await _details(sub, job_id))["status"] in ("queued", "running") and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert len(locked) == 2
    assert details["status"] == "success" and details["error_count"] == 0, details
    assert [await sub.teams_numbers(u["msTeams"]["id"]) for u in users] == [[n] for n in sub.numbers[10:12]]


async def test_a_database_dropping_every_connection_mid_job_fails_nothing(sub: Onboarded) -> None:
    """PostgreSQL ending every connection three times while a bulk job runs: the job ends with every item in
    success, its job engine and the API go on, and no request is answered anything but 200 or 503 meanwhile. (Written
    with the ping of idle connections only: it found the credential cache's rollback listener turning a dropped
    connection into PendingRollbackError, a transient failure made final.)"""
    live = sub.world.live
    if live.settings.is_sqlite:
        pytest.skip("SQLite has no server to drop the connections")
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:USERS]
    await _faults(sub, "PUT", {"latencyMs": 150})  # the job lasts seconds: the drops land while it runs
    try:
        job_id = await _submit(sub, users, sub.numbers[:USERS], "database drops")
        answers, dropped = [], []

        async def job() -> httpx.Response:
            response = await sub.world.client.get(f"{sub.path}/msteams/users/bulk/{job_id}", headers=sub.headers)
            answers.append(response.status_code)
            return response

        for _ in range(3):
            await asyncio.sleep(0.4)
            dropped.append(await end_sessions(live.settings.effective_database_url))  # every session but its own
            await job()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            response = await job()
            if response.status_code == 200 and response.json()["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.3)
    finally:
        await _faults(sub, "DELETE")
    assert all(dropped), dropped  # each time, connections were there to drop
    assert set(answers) <= {200, 503}, answers
    details = await _details(sub, job_id)
    assert details["status"] == "success", details["job_items"]
    assert details["success_count"] == USERS and details["error_count"] == 0
    for user, number in zip(users, sub.numbers):
        assert await sub.teams_numbers(user["msTeams"]["id"]) == [number]
