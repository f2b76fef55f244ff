"""Fusion logins count the times their sessions were ended (`fusion_users.session_epoch`): a console cookie signed
before a login was disabled stays dead once the login is enabled again.

Revision ID: 0013_login_session_epoch
Revises: 0011_neutral_bulk_outcomes (the Fusion tables' branch)
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_login_session_epoch"
down_revision = "0011_neutral_bulk_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fusion_users") as table:
        table.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("fusion_users") as table:
        table.drop_column("session_epoch")
