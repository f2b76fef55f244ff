"""Console sign-outs: a console cookie signed out is refused until it would have expired, wherever a copy of it is
(`console_signouts`, console/auth.py).

Revision ID: 0014_console_signouts
Revises: 0013_login_session_epoch
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_console_signouts"
down_revision = "0013_login_session_epoch"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_signouts",
        sa.Column("token_digest", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_console_signouts_expires_at", "console_signouts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_signouts_expires_at", table_name="console_signouts")
    op.drop_table("console_signouts")
