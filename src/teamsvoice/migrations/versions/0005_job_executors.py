"""job executors: one row per worker process (heartbeat), for recovering the work of dead workers

Revision ID: 0005_job_executors
Revises: 0004_fusion_users
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_job_executors"
down_revision = "0004_fusion_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_executors",
        sa.Column("executor_id", sa.String(120), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False, index=True),
        sa.Column("stopped", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_executors")
