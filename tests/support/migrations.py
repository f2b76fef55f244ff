"""Tests of a migration on both backends: an empty database of the backend and the Alembic configuration that
migrates it to a chosen revision (upgrade to the revision before, write rows as they were stored, upgrade, read)."""

import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text

from teamsvoice.core.db import MIGRATIONS_DIR, sync_url

NOW = "2026-01-01 00:00:00"


def empty_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database: a SQLite file in `tmp_path`, or a database of the suite's PostgreSQL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'before.sqlite3'}"
    return request.getfixturevalue("postgres").create_database(f"tv_mig_{uuid.uuid4().hex[:10]}")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def database_at(revision: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Config, Engine]:
    """A new database of the backend migrated to `revision`, its configuration (to migrate it on) and an engine."""
    url = empty_database(backend, request, tmp_path)
    config = alembic_config(url)
    command.upgrade(config, revision)
    return config, create_engine(sync_url(url))


def add_enterprise(connection: Connection, n: int = 1) -> int:
    """Reseller n and its enterprise n, with the columns every revision since 0001 has; answers the enterprise id."""
    connection.execute(text("INSERT INTO resellers (id, name, level, registered_redirect_urls, created_at) "
                            "VALUES (:n, :name, 'MASTER', '[]', :now)"), {"n": n, "name": f"r{n}", "now": NOW})
    connection.execute(text(
        "INSERT INTO enterprises (id, reseller_id, enterprise_name, services, pbx_ids, sbc_gateway_ids, "
        "billing_references, ent_config_infos, allow_external_numbers, can_add_extensions, "
        "can_reseller_manage_enterprise_provisioning, federated, pbx_moh, restrict_admin_access, secure_sms_enabled, "
        "user_limit, user_provisioning_enabled, registered, created_at, updated_at) VALUES (:n, :n, 'e', '[]', '[]', "
        "'[]', '[]', '[]', false, false, false, false, false, false, false, 0, false, false, :now, :now)"),
        {"n": n, "now": NOW})
    return n


def add_fusion_subscription(connection: Connection, n: int = 1) -> int:
    """`add_enterprise`'s enterprise n as Fusion subscription n of Fusion tenant n (columns every revision since
    0003 has); answers the subscription id."""
    add_enterprise(connection, n)
    connection.execute(text("INSERT INTO fusion_tenants (id, uuid, name, owner_reseller_id, created_at, updated_at) "
                            "VALUES (:n, :uuid, 't', :n, :now, :now)"), {"n": n, "uuid": str(uuid.uuid4()), "now": NOW})
    connection.execute(text(
        "INSERT INTO fusion_subscriptions (id, fusion_tenant_id, name, ms_teams_users, sip_trunk_channels, mode, "
        "enterprise_id, created_at) VALUES (:n, :n, 's', 0, 0, 'fusion', :n, :now)"), {"n": n, "now": NOW})
    return n
