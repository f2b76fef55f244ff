"""Migration 0011: bulk items stored with Fusion's error body become neutral outcomes, and the Fusion API renders
each of them back to the body it stored (so clients see the same job details), on both backends."""

import importlib
import json
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from teamsvoice.api.fusion.error_codes import NAMED_CODES, outcome_body
from tests.conftest import BACKENDS
from tests.support.migrations import NOW, add_fusion_subscription, database_at

migration = importlib.import_module("teamsvoice.migrations.versions.0011_neutral_bulk_outcomes")
BEFORE = migration.down_revision


def _parents(connection) -> int:
    """A reseller, an enterprise, a Fusion tenant and subscription, and a bulk job as revision BEFORE has them."""
    add_fusion_subscription(connection)
    connection.execute(text(
        "INSERT INTO fusion_bulk_jobs (id, job_key, job_id, subscription_id, kind, title, status, total_count, "
        "success_count, error_count, created_on, updated_on) VALUES (1, :key, '1', 1, 'ms_users', 'j', 'partial', "
        "0, 0, 0, :now, :now)"), {"key": str(uuid.uuid4()), "now": NOW})
    return 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_fusion_error_bodies_become_neutral_outcomes_rendered_as_before(backend: str, request: pytest.FixtureRequest,
                                                                        tmp_path: Path) -> None:
    config, engine = database_at(BEFORE, backend, request, tmp_path)
    # One ended item per Fusion code the domain can raise, an unexpected failure, an unknown number, a pending
    # item waiting for Microsoft (its last error), and a succeeded one.
    stored = {number: {"code": number, "reason": f"reason {number}"} for number in migration.BY_NUMBER}
    stored[7777] = {"code": 7777, "reason": "a number no rule has"}
    try:
        with engine.begin() as connection:
            job = _parents(connection)
            insert = text("INSERT INTO fusion_bulk_items (job_id, position, upn, data, status, error, details, attempts, "
                          "created_on, updated_on) VALUES (:job, :position, :upn, '{}', :status, :error, :details, 1, "
                          ":now, :now)")
            rows = [dict(job=job, position=position, upn=f"u{number}@x", status="error", now=NOW,
                         error=_json(body), details=None) for position, (number, body) in enumerate(stored.items())]
            rows.append(dict(job=job, position=len(rows), upn="waiting@x", status="pending", now=NOW, error=None,
                             details=_json({"lastError": {"code": 1503, "reason": "Graph: throttled"},
                                            "retryInSeconds": 2.0})))
            rows.append(dict(job=job, position=len(rows), upn="done@x", status="success", now=NOW, error=None,
                             details=_json({})))
            for row in rows:
                connection.execute(insert, row)

        command.upgrade(config, "heads")

        with engine.connect() as connection:
            items = {r.upn: r for r in connection.execute(text(
                "SELECT upn, status, error, details FROM fusion_bulk_items ORDER BY position"))}
        for number, body in stored.items():
            outcome = _loaded(items[f"u{number}@x"].error)
            assert set(outcome) >= {"kind", "code", "message"} and "reason" not in outcome
            assert outcome["message"] == body["reason"]
            expected = body if number in migration.BY_NUMBER else {"code": 1000, "reason": body["reason"]}
            assert outcome_body(outcome) == expected, number
        waiting = _loaded(items["waiting@x"].details)
        assert waiting["retryInSeconds"] == 2.0 and waiting["lastError"]["kind"] == "upstream_error"
        assert outcome_body(waiting["lastError"]) == {"code": 1503, "reason": "Graph: throttled"}
        assert _loaded(items["done@x"].error) is None and _loaded(items["done@x"].details) == {}

        # Running it again changes nothing; the downgrade gives Fusion's bodies back.
        migration_again = [migration.neutral(_loaded(items[f"u{n}@x"].error)) for n in migration.BY_NUMBER]
        assert migration_again == [_loaded(items[f"u{n}@x"].error) for n in migration.BY_NUMBER]
        assert [migration.fusion(_loaded(items[f"u{n}@x"].error)) for n in migration.BY_NUMBER] == [
            stored[n] for n in migration.BY_NUMBER]
    finally:
        engine.dispose()


def test_every_named_code_of_the_migration_is_the_api_s() -> None:
    """The migration's frozen table agrees with api/fusion/error_codes.py at this revision."""
    for number, (_, code) in migration.BY_NUMBER.items():
        if number >= 2000:
            assert NAMED_CODES[code] == number, code


def _json(value: object) -> str:
    return json.dumps(value)


def _loaded(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
