"""login throttles: failed-login counters per account and client address, shared by all API processes

Revision ID: 0006_login_throttles
Revises: 0005_job_executors
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_login_throttles"
down_revision = "0005_job_executors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("login_throttles")
