"""What each item of a bulk job costs besides its own work. The items read their subscription once between them
(domain/teams_users/workflows._JobMemory), not each: a queue poll starts a job's items together, and each read it
while the first read was under way (a worker spent a tenth of its CPU in those reads, py-spy 2026-12-02). And the
job engine's database sees few transactions per item: the job's workflow enqueues its items a page per transaction
(`runtime.enqueue_many_for_tenant`), and an item's workflow records no step (`workflows.bulk_item`): an enqueue from the
workflow's body and a step's check and record were four of the six transactions DBOS spent on each item."""

import asyncio

import pytest
import sqlalchemy as sa
from dbos._dbos import _get_dbos_instance
from sqlalchemy.engine.default import CACHE_HIT
from sqlalchemy.engine.interfaces import ExecuteStyle

from teamsvoice.core.logging import item_id_var
from teamsvoice.domain.teams_users import bulk, workflows
from teamsvoice.domain.teams_users import service as teams_users_service
from teamsvoice.jobs import runtime
from teamsvoice.jobs.runtime import INTERACTIVE_ITEMS, INTERACTIVE_QUEUE, ITEM_MARK, MICROSOFT_QUEUE, WORKFLOW_GENERATION
from teamsvoice.microsoft.teams_voice import TeamsVoiceAdapter
from tests.api.fusion.users_support import Onboarded, onboard
from tests.e2e.test_job_outage import _details, _submit

USERS = 10


async def _final(sub: Onboarded, job_id: int) -> dict:
    """The job's details once it has ended."""
    while (details := await _details(sub, job_id))["status"] in ("queued", "running"):
        await asyncio.sleep(0.2)
    return details


async def _job_of_users(sub: Onboarded, name: str, count: int = USERS) -> None:
    """A bulk job giving `count` users a number each, run to its end: it succeeds."""
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:count]
    details = await _final(sub, await _submit(sub, users, sub.numbers[:count], name))
    assert details["status"] == "success" and details["success_count"] == count, details


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, tenant_index=1)


async def test_a_jobs_items_read_its_subscription_once(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    read = bulk.load_access

    async def counted(session, subscription_id):  # type: ignore[no-untyped-def]
        reads.append(subscription_id)
        return await read(session, subscription_id)

    monkeypatch.setattr(bulk, "load_access", counted)
    # The items read it again once the first read is ACCESS_SECONDS old: on a loaded machine the job may outlast that.
    monkeypatch.setattr(workflows, "ACCESS_SECONDS", 3600.0)
    await _job_of_users(sub, "subscription reads")
    # The job's start reads it (to know its Microsoft tenant), then the first item; the others share that read.
    assert len(reads) == 2, reads


async def test_an_items_success_is_recorded_with_its_last_change(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """A voice item's outcome is written in the transaction that records the voice user's sync (`service.apply_update`'s
    `settle`), not in a transaction of its own after it: one commit fewer per item. The job still ends `success`
    with every item counted (`_job_of_users`)."""
    own: list[int] = []
    record = bulk._record_outcome

    async def counted(sessions, job_id, item_id, outcome, **kwargs):  # type: ignore[no-untyped-def]
        own.append(item_id)
        await record(sessions, job_id, item_id, outcome, **kwargs)

    monkeypatch.setattr(bulk, "_record_outcome", counted)
    await _job_of_users(sub, "settled")
    assert own == []


async def test_an_items_voice_state_is_read_while_its_wish_is_recorded(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """An item's first Teams request, the read of its user's voice state, is on its way before the transaction that
    records the item's wish has committed (`service._apply_voice`), not a transaction later: a read changes nothing.
    A change refused as it is recorded (a number another user holds) reads nothing from Teams."""
    events: list[tuple[str | None, str]] = []
    read, commit = TeamsVoiceAdapter.voice_state, teams_users_service.end_transaction

    async def reading(self, user_id):  # type: ignore[no-untyped-def]
        events.append((item_id_var.get(), "read"))
        return await read(self, user_id)

    async def committing(session):  # type: ignore[no-untyped-def]
        await commit(session)
        events.append((item_id_var.get(), "committed"))

    monkeypatch.setattr(TeamsVoiceAdapter, "voice_state", reading)
    monkeypatch.setattr(teams_users_service, "end_transaction", committing)
    users = [u for u in await sub.users(20) if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:3]
    details = await _final(sub, await _submit(sub, users[:2], sub.numbers[:2], "read early"))
    assert details["status"] == "success", details
    for item in details["job_items"]:
        mine = [what for item_id, what in events if item_id == str(item["id"])]
        assert mine[:2] == ["read", "committed"], (item["upn"], mine)

    details = await _final(sub, await _submit(sub, users[2:], sub.numbers[:1], "number held by another user"))  # users[0]'s
    assert details["status"] == "error", details
    refused = str(details["job_items"][0]["id"])
    assert [what for item_id, what in events if item_id == refused and what == "read"] == []


async def test_an_items_audit_entry_names_its_enterprise_without_reading_it(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each user's change is an audit entry owned by the subscription's enterprise (its reseller, name and tenant), taken
    from the enterprise the job's items already hold (`recorder.known_rows`): an item's transaction does not read it
    again (one statement per user)."""
    from teamsvoice.domain.audit import repository as audit_repository
    from teamsvoice.domain.audit.models import AuditEntry
    from teamsvoice.domain.orgs.models import Enterprise

    owners_read: list[str] = []
    row_by_id = audit_repository.row_by_id

    def counted(session, table, key):  # type: ignore[no-untyped-def]
        if item_id_var.get() is not None:  # (the job's own rows name their owner too, once per job)
            owners_read.append(table.name)
        return row_by_id(session, table, key)

    monkeypatch.setattr(audit_repository, "row_by_id", counted)
    users = [u["msTeams"]["userPrincipalName"].lower() for u in await sub.users(20)
             if not u["msTeams"]["userPrincipalName"].startswith("admin@")][:3]
    await _job_of_users(sub, "audited", count=3)
    assert "enterprises" not in owners_read, owners_read
    found: list = []

    async def entries(session):  # type: ignore[no-untyped-def]
        enterprise = await session.scalar(sa.select(Enterprise).where(Enterprise.tenant_id == sub.tenant["tenantId"]))
        rows = await session.scalars(sa.select(AuditEntry).where(
            AuditEntry.aggregate == "teams_user", AuditEntry.object_label.in_(users)))
        found.extend((e.object_label, e.enterprise_id == enterprise.id, e.customer == enterprise.enterprise_name,
                      e.owner_reseller_id == enterprise.reseller_id, e.tenant == enterprise.tenant_id) for e in rows)
    await sub.world._with_session(entries)
    assert sorted({label for label, *_ in found}) == sorted(users), found
    assert all(all(owned) for _, *owned in found), found


def _item_workflows() -> dict[str, dict]:
    """The bulk item workflows the job engine has recorded, by workflow id: their row, and how many steps they recorded."""
    system = _get_dbos_instance()._sys_db
    status, outputs = system.tables.workflow_status, system.tables.operation_outputs
    steps = (sa.select(sa.func.count()).select_from(outputs).where(outputs.c.workflow_uuid == status.c.workflow_uuid)
             .scalar_subquery())
    with system.engine.connect() as connection:
        rows = connection.execute(sa.select(status, steps.label("steps")).where(status.c.name == "fusion_bulk_item"))
        return {row.workflow_uuid: row._asdict() for row in rows}


def _recorded_operations(workflow_id: str) -> list[str]:
    system = _get_dbos_instance()._sys_db
    outputs = system.tables.operation_outputs
    with system.engine.connect() as connection:
        return list(connection.scalars(sa.select(outputs.c.function_name).where(outputs.c.workflow_uuid == workflow_id)
                                       .order_by(outputs.c.function_id)))


def _submitter(workflow_id: str) -> str | None:
    system = _get_dbos_instance()._sys_db
    status = system.tables.workflow_status
    with system.engine.connect() as connection:
        return connection.scalar(sa.select(status.c.authenticated_user).where(status.c.workflow_uuid == workflow_id))


async def test_a_jobs_items_are_enqueued_a_page_at_a_time_and_record_no_step(sub: Onboarded) -> None:
    before = _item_workflows()
    await _job_of_users(sub, "no steps")
    items = [row for workflow_id, row in _item_workflows().items() if workflow_id not in before]
    assert len(items) == USERS and {row["status"] for row in items} == {"SUCCESS"}
    assert {row["steps"] for row in items} == {0}  # each item's workflow recorded no step
    # Enqueued as a public enqueue does (runtime.enqueue_for_tenant): the Microsoft queue, the tenant's partition,
    # this release's workflows, the item's position in the job as its priority, no parent.
    assert {(row["queue_name"], row["queue_partition_key"], row["application_version"], row["parent_workflow_id"])
            for row in items} == {(MICROSOFT_QUEUE, sub.tenant["tenantId"], f"teamsvoice-workflows-{WORKFLOW_GENERATION}", None)}
    assert sorted(row["priority"] for row in items) == list(range(1, USERS + 1))
    # The job's workflow recorded its start and one step per page (the last page empty), not an operation per item.
    parents = {row["workflow_uuid"].rsplit(ITEM_MARK, 1)[0] for row in items}
    assert len(parents) == 1
    parent = parents.pop()
    assert _recorded_operations(parent) == ["fusion_bulk_begin", "fusion_bulk_enqueue_page", "fusion_bulk_enqueue_page"]
    # The job's submitter goes on to its items (their changes are audited on the submitter's behalf).
    assert {row["authenticated_user"] for row in items} == {_submitter(parent)} != {None}


async def test_a_page_of_items_is_written_by_an_insert_compiled_once(sub: Onboarded) -> None:
    """A page of items goes into the job engine's workflow table in one INSERT with the items as its parameters, the
    same statement for every page: compiled once (`runtime._insert_rows_with_one_statement_per_shape`). DBOS's own way,
    a multi-row VALUES holding the rows, could not be cached: it was compiled anew for every page, 0.67 ms of a
    worker's CPU per item."""
    system = _get_dbos_instance()._sys_db
    pages: list[tuple[object, object]] = []

    def executed(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        compiled = getattr(context.compiled, "statement", None)
        if context.isinsert and getattr(compiled, "table", None) is not None and compiled.table.name == "workflow_status" \
                and sub.tenant["tenantId"] in str(parameters):  # (this tenant's: no other test's work)
            pages.append((context.execute_style, context.cache_hit))

    sa.event.listen(system.engine, "after_cursor_execute", executed)
    try:
        await _job_of_users(sub, "a page", USERS)
        await _job_of_users(sub, "a page of another size", USERS - 1)
    finally:
        sa.event.remove(system.engine, "after_cursor_execute", executed)
    # Each job's page (the jobs' own workflows are a row each: one statement, one row)
    page_inserts = [hit for style, hit in pages if style != ExecuteStyle.EXECUTE]
    assert len(page_inserts) == 2, pages
    assert page_inserts[1] == CACHE_HIT, pages  # the second page, of another size, by the first one's statement


async def test_a_small_jobs_items_have_their_own_queue(sub: Onboarded) -> None:
    """A job of a few users (a one-user change someone waits for) runs on the tenant's partition of the interactive
    queue: its item does not wait for one of the tenant's slots that a bulk job holds. A job of more stays on the
    Microsoft queue (the test above: ten users)."""
    assert INTERACTIVE_ITEMS < USERS
    for count in (1, INTERACTIVE_ITEMS):
        before = _item_workflows()
        await _job_of_users(sub, f"small {count}", count)
        items = [row for workflow_id, row in _item_workflows().items() if workflow_id not in before]
        assert len(items) == count and {row["status"] for row in items} == {"SUCCESS"}
        assert {(row["queue_name"], row["queue_partition_key"]) for row in items} == {(INTERACTIVE_QUEUE, sub.tenant["tenantId"])}
        assert sorted(row["priority"] for row in items) == list(range(1, count + 1))


async def test_a_job_started_by_the_previous_workflow_still_ends(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job left unfinished by a release before `bulk_job` replays in its recorded workflow (`fusion_bulk_update`, one
    enqueue per item): started under that workflow here, it runs to its end."""
    from teamsvoice.jobs.runtime import start_once

    monkeypatch.setattr(workflows, "_start_bulk", lambda job_key, job_id: start_once(
        f"fusion-bulk-{job_key}", workflows._legacy_bulk_update, job_id, job_key))
    before = _item_workflows()
    await _job_of_users(sub, "legacy")
    items = [row for workflow_id, row in _item_workflows().items() if workflow_id not in before]
    parents = {row["workflow_uuid"].rsplit(ITEM_MARK, 1)[0] for row in items}
    assert len(items) == USERS and len(parents) == 1
    assert _recorded_operations(parents.pop()).count("fusion_bulk_item") == USERS  # enqueued one by one, as it was


def _analyses() -> int:
    """How many times the job engine's workflow table was analyzed by a statement (not by autovacuum)."""
    system = _get_dbos_instance()._sys_db
    with system.engine.connect() as connection:
        return connection.execute(sa.text("SELECT analyze_count FROM pg_stat_user_tables WHERE relid = CAST(:name AS regclass)"),
                                  {"name": runtime.queue_table(system)}).scalar_one()


async def _analyses_after(expected: int) -> int:
    for _ in range(25):  # (a statement's statistics reach the shared counters within moments)
        if (count := _analyses()) >= expected:
            return count
        await asyncio.sleep(0.2)
    return _analyses()


async def test_a_large_page_of_items_refreshes_the_queue_statistics(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL plans the job engine's search for the partitions with waiting items from its statistics of the
    workflow table; taken while nothing waited, they sent that search through the wrong index (20-30 ms a poll with
    2,000 items waiting). A page of at least QUEUE_STATISTICS_ITEMS enqueued items refreshes them (once per
    QUEUE_STATISTICS_SECONDS per process); a smaller page does not. On SQLite nothing is refreshed, and such a job
    runs as any (naming the table there failed the enqueue: a 1,000-row import never ended)."""
    monkeypatch.setattr(runtime, "QUEUE_STATISTICS_ITEMS", USERS)
    if _get_dbos_instance()._sys_db.engine.dialect.name != "postgresql":
        await _job_of_users(sub, "statistics")  # (it asserts the job's success)
        return
    monkeypatch.setattr(runtime, "QUEUE_STATISTICS_SECONDS", 3600.0)  # (however slow the machine, the next job is within)
    monkeypatch.setattr(runtime, "_statistics_at", [float("-inf")])
    before = _analyses()
    await _job_of_users(sub, "statistics")
    assert await _analyses_after(before + 1) == before + 1
    await _job_of_users(sub, "statistics again")  # within QUEUE_STATISTICS_SECONDS of the first
    monkeypatch.setattr(runtime, "_statistics_at", [float("-inf")])  # as if they had passed
    await _job_of_users(sub, "below the page size", USERS - 1)
    await asyncio.sleep(1.0)
    assert _analyses() == before + 1
    await _job_of_users(sub, "statistics a third time")
    assert await _analyses_after(before + 2) == before + 2
