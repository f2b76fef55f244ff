"""A calling job's per-user results are rows of their own (`calling_job_results`): a batch's results are recorded
by an upsert of its users' rows, reading none of the job's other results (the whole document of every result was
read and written again at each batch of 20 users and each WAITING note: quadratic in the job's users); a batch
recorded again (its step run again after a crash) rewrites its users' rows, never adds any; getSyncJobStatus answers
them in the order first recorded, `counts` and `processed` of all of them, and a page of them on request; revision
0021 moves each job's stored document into rows, in its order, and the downgrade back. On both backends."""

import asyncio
import importlib
import json
import threading
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, text

from teamsvoice.domain.calling import workflows
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.jobs.runtime import job_context
from tests.conftest import BACKENDS
from tests.support.ctt import SPRING, bearer, token_for
from tests.support.database import in_session
from tests.support.migrations import NOW, add_enterprise, database_at



def _recorded(job_id: int, results: dict) -> list[str]:
    """Records the results as a batch's step does (`workflows._record`); answers the statements it sent."""
    engine, here, sent = job_context().engine, threading.get_ident(), []

    def listen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == here:  # the job engine's own threads use the same engine meanwhile
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        workflows._record(job_id, results)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return sent


async def test_results_recorded_again_stay_one_per_user_and_are_answered_in_pages(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]

    async def make(session) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        enterprise = Enterprise(reseller_id=login.reseller_id, enterprise_name=f"Results {uuid.uuid4().hex[:6]}")
        session.add(enterprise)
        await session.flush()
        job = CallingJob(enterprise_id=enterprise.id, kind="SYNC_TEAMS_USERS", status="RUNNING", total=3)
        session.add(job)
        await session.flush()
        return job.id, job.job_key

    job_id, job_key = await in_session(live, make)
    first = {"ada@x": workflows.user_result("ada@x", "WAITING", error="Graph: throttled (try 1; retrying)"),
             "bob@x": workflows.user_result("bob@x", "UPDATED", changes=["number set to +3225551000"])}
    again = {"ada@x": workflows.user_result("ada@x", "FAILED", error="User not found"),  # its step run again
             "bob@x": first["bob@x"], "cy@x": workflows.user_result("cy@x", "UNCHANGED", changes=[])}
    for batch in (first, again):
        sent = await asyncio.to_thread(_recorded, job_id, batch)
        touching = [s for s in sent if "calling_job" in s]
        # One write of the batch's rows; nothing of the job's other results (nor the job's row) read or rewritten.
        assert len(touching) == 1 and touching[0].lstrip().upper().startswith("INSERT INTO CALLING_JOB_RESULTS"), sent

    headers = bearer(await token_for(client, login))
    url = f"/provisioning/getSyncJobStatus/{job_key}"
    whole = await client.get(url, headers=headers)
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["results"] == [
        {"userPrincipalName": "ada@x", "status": "FAILED", "error": "User not found"},
        {"userPrincipalName": "bob@x", "status": "UPDATED", "changes": ["number set to +3225551000"]},
        {"userPrincipalName": "cy@x", "status": "UNCHANGED", "changes": []}]
    assert (body["processed"], body["counts"], body["total"]) == (3, {"FAILED": 1, "UPDATED": 1, "UNCHANGED": 1}, 3)

    page = (await client.get(url, headers=headers, params={"offset": "1", "limit": "1"})).json()
    assert [r["userPrincipalName"] for r in page["results"]] == ["bob@x"]
    assert (page["processed"], page["counts"]) == (3, body["counts"])  # of all the results, not of the page
    assert [r["userPrincipalName"] for r in (await client.get(url, headers=headers, params={"offset": "2"})).json()[
        "results"]] == ["cy@x"]
    for past in ("3", "9223372036854775807"):  # (past the last result, up to the largest offset a database takes)
        beyond = await client.get(url, headers=headers, params={"offset": past})
        assert beyond.status_code == 200 and beyond.json()["results"] == [] and beyond.json()["processed"] == 3
    for name, value in (("limit", "0"), ("limit", "10001"), ("limit", "1_0"), ("limit", "5.0"), ("offset", "-1"),
                        ("offset", "²"), ("offset", "")):
        refused = await client.get(url, headers=headers, params={name: value})
        assert refused.status_code == 400 and set(refused.json()) == SPRING, (name, value, refused.text)
        assert refused.json()["message"].startswith(f"{name}:"), refused.text


MIGRATION = importlib.import_module("teamsvoice.migrations.versions.0021_calling_job_results")
# As revision 0012 left them: a sync's results (in the order recorded), a Unified App sync's, a job with none.
DOCUMENTS = {
    1: {"di@x": {"user_principal_name": "di@x", "status": "FAILED", "error": "User not found"},
        "ada@x": {"user_principal_name": "ada@x", "status": "UPDATED", "changes": ["number set to +3225551000"]},
        "cy@x": {"user_principal_name": "cy@x", "status": "WAITING", "error": "Graph: throttled (try 1; retrying)"}},
    2: {"bob@x": {"user_principal_name": "bob@x", "status": "INSTALLED"}},
    3: {},
}


def _loaded(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.parametrize("backend", BACKENDS)
def test_stored_results_move_into_rows_in_their_order_and_back(backend: str, request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    config, engine = database_at(MIGRATION.down_revision, backend, request, tmp_path)
    try:
        with engine.begin() as connection:
            add_enterprise(connection)
            for job_id, document in DOCUMENTS.items():
                connection.execute(text(
                    "INSERT INTO calling_jobs (id, job_key, enterprise_id, kind, status, total, results, detail, "
                    "created_at) VALUES (:id, :key, 1, 'SYNC_TEAMS_USERS', 'COMPLETED', 3, :results, '{}', :now)"),
                    {"id": job_id, "key": str(uuid.uuid4()), "results": json.dumps(document), "now": NOW})

        def documents() -> dict[int, str]:
            with engine.connect() as connection:
                return {r.id: json.dumps(_loaded(r.results)) for r in connection.execute(text(
                    "SELECT id, results FROM calling_jobs ORDER BY id"))}

        def rows() -> list[tuple]:
            with engine.connect() as connection:
                return [(r.job_id, r.key, r.status, _loaded(r.result)) for r in connection.execute(text(
                    "SELECT job_id, key, status, result FROM calling_job_results ORDER BY id"))]

        before = documents()
        command.upgrade(config, MIGRATION.revision)
        moved = [(job_id, key, result["status"], result) for job_id, document in DOCUMENTS.items()
                 for key, result in document.items()]
        assert rows() == moved
        assert set(documents().values()) == {"{}"}

        command.downgrade(config, MIGRATION.down_revision)
        assert documents() == before  # (the same documents, in the same order)
        command.upgrade(config, MIGRATION.revision)
        assert rows() == moved
    finally:
        engine.dispose()
