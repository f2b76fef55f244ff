"""Migration 0015: a subscription keeps one running wizard run (the newest; one running beside it is stopped,
saying why), and a second running run is refused from then on, on both backends. Migration 0016: the same for a
Microsoft tenant's running runs, across subscriptions."""

import importlib
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from sqlalchemy import text

from tests.conftest import BACKENDS
from tests.support.migrations import NOW, add_fusion_subscription, database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0015_one_running_wizard")
per_tenant = importlib.import_module("teamsvoice.migrations.versions.0016_one_wizard_per_tenant")


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_running_wizard_run_per_subscription(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config, engine = database_at(migration.down_revision, backend, request, tmp_path)
    insert = text("INSERT INTO fusion_wizard_runs (id, job_key, subscription_id, running, steps, status, started_at) "
                  "VALUES (:id, :key, :sub, :running, '[]', 'wizard_1_OK', :now)")
    try:
        with engine.begin() as connection:
            add_fusion_subscription(connection)
            # Two running at once, and an ended one.
            for run_id, sub, running in ((1, 1, False), (2, 1, True), (3, 1, True)):
                connection.execute(insert, {"id": run_id, "key": str(uuid.uuid4()), "sub": sub, "running": running, "now": NOW})

        command.upgrade(config, "heads")

        with engine.connect() as connection:
            rows = {r.id: (bool(r.running), r.error) for r in connection.execute(text(
                "SELECT id, running, error FROM fusion_wizard_runs ORDER BY id"))}
        assert rows == {1: (False, None), 2: (False, migration.STOPPED), 3: (True, None)}
        with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as connection:
            connection.execute(insert, {"id": 5, "key": str(uuid.uuid4()), "sub": 1, "running": True, "now": NOW})
        with engine.begin() as connection:  # an ended run beside the running one is fine
            connection.execute(insert, {"id": 6, "key": str(uuid.uuid4()), "sub": 1, "running": False, "now": NOW})
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_running_wizard_run_per_microsoft_tenant(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    config, engine = database_at(per_tenant.down_revision, backend, request, tmp_path)
    insert = text("INSERT INTO fusion_wizard_runs (id, job_key, subscription_id, running, steps, status, ms_tenant_id, "
                  "started_at) VALUES (:id, :key, :sub, :running, '[]', 'wizard_1_OK', :tenant, :now)")

    def add(connection, run_id: int, sub: int, running: bool, tenant: str | None) -> None:  # type: ignore[no-untyped-def]
        connection.execute(insert, {"id": run_id, "key": str(uuid.uuid4()), "sub": sub, "running": running,
                                    "tenant": tenant, "now": NOW})

    try:
        with engine.begin() as connection:
            for n in (1, 2, 3):
                add_fusion_subscription(connection, n)
            # Subscriptions 1 and 2 run against tenant T at once; 3 runs against U; ended runs and runs before
            # step 1 (no tenant yet) stay as they are.
            for run_id, sub, running, tenant in ((1, 1, False, "T"), (2, 1, True, "T"), (3, 2, True, "T"),
                                                 (4, 3, True, "U"), (5, 3, False, None)):
                add(connection, run_id, sub, running, tenant)

        command.upgrade(config, "heads")

        with engine.connect() as connection:
            rows = {r.id: (bool(r.running), r.error) for r in connection.execute(text(
                "SELECT id, running, error FROM fusion_wizard_runs ORDER BY id"))}
        assert rows == {1: (False, None), 2: (False, per_tenant.STOPPED), 3: (True, None), 4: (True, None), 5: (False, None)}
        with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as connection:
            add(connection, 6, 1, True, "T")  # subscription 1 again, while 2 runs against T
        with engine.begin() as connection:  # runs before their step 1 (no tenant) are not held back
            add(connection, 7, 1, True, None)
    finally:
        engine.dispose()
