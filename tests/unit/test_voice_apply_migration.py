"""Migration 0017: a tenant keeps one unfinished voice-state apply job (the newest; one queued or running beside it
is ended as failed, saying why), and a second unfinished job is refused from then on, on both backends."""

import importlib
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from sqlalchemy import text

from tests.conftest import BACKENDS
from tests.support.migrations import NOW, add_enterprise, database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0017_one_apply_per_tenant")


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_unfinished_apply_per_tenant(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config, engine = database_at(migration.down_revision, backend, request, tmp_path)
    insert = text("INSERT INTO voice_apply_jobs (id, job_key, enterprise_id, trigger, status, differences, desired, "
                  "results, created_at) VALUES (:id, :key, :enterprise, 'api', :status, '[]', '{}', '[]', :now)")

    def add(connection, job_id: int, enterprise: int, status: str) -> None:  # type: ignore[no-untyped-def]
        connection.execute(insert, {"id": job_id, "key": str(uuid.uuid4()), "enterprise": enterprise, "status": status,
                                    "now": NOW})

    try:
        with engine.begin() as connection:
            for n in (1, 2):
                add_enterprise(connection, n)
            # Enterprise 1 has a running and a newer queued apply at once; 2 one running; ended ones stay as they are.
            for job_id, enterprise, status in ((1, 1, "completed"), (2, 1, "running"), (3, 1, "queued"),
                                               (4, 2, "running"), (5, 2, "failed")):
                add(connection, job_id, enterprise, status)

        command.upgrade(config, "heads")

        with engine.connect() as connection:
            rows = {r.id: (r.status, r.error, r.finished_at is not None) for r in connection.execute(text(
                "SELECT id, status, error, finished_at FROM voice_apply_jobs ORDER BY id"))}
        assert rows == {1: ("completed", None, False), 2: ("failed", migration.STOPPED, True), 3: ("queued", None, False),
                        4: ("running", None, False), 5: ("failed", None, False)}
        for status in ("queued", "running"):  # enterprise 1 again, while its job 3 is queued
            with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as connection:
                add(connection, 6, 1, status)
        with engine.begin() as connection:  # ended jobs beside the unfinished one are fine
            add(connection, 7, 1, "completed")
            add(connection, 8, 1, "cancelled")
    finally:
        engine.dispose()
