"""Alembic environment: runs migrations with a synchronous engine (pysqlite or psycopg)."""

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from teamsvoice.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")  # upgrade_database passes one holding the migration lock
    if given is not None:
        _run(given)
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as connection:
        _run(connection)


run_migrations_online()
