"""Migration 0012: calling jobs' per-user results and published app, stored under ConnecttoTeams' field names,
become neutral (`user_principal_name`, `app_id`); getSyncJobStatus renders them as it did; the downgrade gives
the old rows back. On both backends."""

import importlib
import json
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from teamsvoice.api.connecttoteams.calling_wire import render_job
from teamsvoice.domain.calling.jobs import JobProgress
from teamsvoice.domain.calling.models import CallingJob
from tests.conftest import BACKENDS
from tests.support.migrations import NOW, add_enterprise, database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0012_neutral_calling_results")
BEFORE = migration.down_revision

# As the calling jobs stored them before the revision: a Teams users sync (updated, unchanged, waiting, failed),
# a Unified App sync (its app and installs), a queued Fusion sync of some users, and a job that has no results.
USERS_SYNC = {
    "ada@x": {"userPrincipalName": "ada@x", "status": "UPDATED", "changes": ["number set to +3225551000"]},
    "bob@x": {"userPrincipalName": "bob@x", "status": "UNCHANGED", "changes": []},
    "cy@x": {"userPrincipalName": "cy@x", "status": "WAITING", "error": "Graph: throttled (try 1; retrying)"},
    "di@x": {"userPrincipalName": "di@x", "status": "FAILED", "error": "User not found"},
}
APP_SYNC = {"ada@x": {"userPrincipalName": "ada@x", "status": "INSTALLED"},
            "bob@x": {"userPrincipalName": "bob@x", "status": "FAILED", "error": "Graph: forbidden"}}
APP = {"app": {"teamsAppId": "0a1b", "action": "UPDATED", "version": "1.0.3"}}
ROWS = [(1, "SYNC_TEAMS_USERS", USERS_SYNC, {}), (2, "SYNC_UNIFIED_APP", APP_SYNC, APP),
        (3, "SYNC_TEAMS_USERS", {}, {"voiceUserIds": [4, 5]}), (4, "SYNC_UNIFIED_APP", {}, {})]


def _loaded(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _stored(engine) -> dict[int, tuple[object, object]]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return {r.id: (_loaded(r.results), _loaded(r.detail)) for r in connection.execute(text(
            "SELECT id, results, detail FROM calling_jobs ORDER BY id"))}


def _answer(job_id: int, kind: str, results: dict, detail: object) -> dict:
    """getSyncJobStatus' answer of the job with these results (revision 0021 moves them into rows, read in this
    order and counted per status)."""
    job = CallingJob(id=job_id, job_key=f"k{job_id}", enterprise_id=1, kind=kind, status="COMPLETED", total=2,
                     results={}, detail=detail, error=None, created_at=datetime(2026, 1, 1))
    stored = list(results.values())
    return render_job(JobProgress(job, dict(Counter(r["status"] for r in stored)), stored))


@pytest.mark.parametrize("backend", BACKENDS)
def test_calling_results_become_neutral_and_are_answered_as_before(backend: str, request: pytest.FixtureRequest,
                                                                   tmp_path: Path) -> None:
    config, engine = database_at(BEFORE, backend, request, tmp_path)
    try:
        with engine.begin() as connection:
            add_enterprise(connection)
            for job_id, kind, results, detail in ROWS:
                connection.execute(text(
                    "INSERT INTO calling_jobs (id, job_key, enterprise_id, kind, status, total, results, detail, "
                    "created_at) VALUES (:id, :key, 1, :kind, 'COMPLETED', 2, :results, :detail, :now)"),
                    {"id": job_id, "key": str(uuid.uuid4()), "kind": kind, "results": json.dumps(results),
                     "detail": json.dumps(detail), "now": NOW})
        before = {job_id: (kind, results, detail) for job_id, kind, results, detail in ROWS}

        command.upgrade(config, migration.revision)
        after = _stored(engine)
        neutral = after[1][0]
        assert neutral["ada@x"] == {"user_principal_name": "ada@x", "status": "UPDATED",
                                    "changes": ["number set to +3225551000"]}
        assert neutral["di@x"] == {"user_principal_name": "di@x", "status": "FAILED", "error": "User not found"}
        assert after[2] == ({"ada@x": {"user_principal_name": "ada@x", "status": "INSTALLED"},
                             "bob@x": {"user_principal_name": "bob@x", "status": "FAILED", "error": "Graph: forbidden"}},
                            {"app": {"app_id": "0a1b", "action": "UPDATED", "version": "1.0.3"}})
        assert after[3] == ({}, {"voiceUserIds": [4, 5]}) and after[4] == ({}, {})
        for job_id, (kind, results, detail) in before.items():
            # getSyncJobStatus answered the old rows' fields as they were stored: it still does, in the same order.
            answer = _answer(job_id, kind, *after[job_id])
            assert json.dumps(answer["results"]) == json.dumps(list(results.values())), job_id
            assert json.dumps(answer["app"]) == json.dumps(detail.get("app")), job_id
        assert _answer(1, "SYNC_TEAMS_USERS", *after[1])["counts"] == {"UPDATED": 1, "UNCHANGED": 1, "WAITING": 1,
                                                                      "FAILED": 1}

        command.downgrade(config, BEFORE)
        assert _stored(engine) == {job_id: (results, detail) for job_id, (_, results, detail) in before.items()}
        command.upgrade(config, migration.revision)  # and up again
        assert _stored(engine) == after
    finally:
        engine.dispose()


def test_converting_twice_changes_nothing() -> None:
    once = migration.convert_results(USERS_SYNC, *migration.RESULT_NAME)
    assert migration.convert_results(once, *migration.RESULT_NAME) == once
    assert migration.convert_results(migration.convert_results(once, *migration.RESULT_NAME[::-1]),
                                     *migration.RESULT_NAME) == once
    assert migration.convert_detail({"app": None}, *migration.APP_NAME) == {"app": None}
