"""Migration 0018: each drift event delivery gets the URL and the (encrypted) secret of its webhook, where it went
until then, so deliveries made before the upgrade still go where they did; on both backends."""

import importlib
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from tests.conftest import BACKENDS
from tests.support.migrations import NOW, add_enterprise, database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0018_drift_delivery_target")


@pytest.mark.parametrize("backend", BACKENDS)
def test_deliveries_get_their_webhooks_url_and_secret(backend: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    config, engine = database_at(migration.down_revision, backend, request, tmp_path)
    try:
        with engine.begin() as connection:
            for n in (1, 2):
                add_enterprise(connection, n)
                connection.execute(text("INSERT INTO voice_drift_webhooks (id, reseller_id, url, secret_encrypted, "
                                        "created_at) VALUES (:n, :n, :url, :secret, :now)"),
                                   {"n": n, "url": f"https://hooks{n}.example/drift", "secret": f"sealed-{n}", "now": NOW})
            for delivery, hook, status in ((1, 1, "pending"), (2, 1, "delivered"), (3, 2, "refused")):
                connection.execute(text("INSERT INTO voice_drift_deliveries (id, job_key, webhook_id, body, status, "
                                        "attempts, created_at) VALUES (:id, :key, :hook, '{}', :status, 0, :now)"),
                                   {"id": delivery, "key": str(uuid.uuid4()), "hook": hook, "status": status, "now": NOW})

        command.upgrade(config, "heads")

        with engine.connect() as connection:
            rows = [tuple(r) for r in connection.execute(text(
                "SELECT id, url, secret_encrypted FROM voice_drift_deliveries ORDER BY id"))]
        assert rows == [(1, "https://hooks1.example/drift", "sealed-1"), (2, "https://hooks1.example/drift", "sealed-1"),
                        (3, "https://hooks2.example/drift", "sealed-2")]
    finally:
        engine.dispose()
