"""Microsoft budget: the token buckets the request scheduler of every process shares (microsoft/budget.py)

Revision ID: 0010_microsoft_budget
Revises: 0008_voice_state
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_microsoft_budget"
down_revision = "0008_voice_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "microsoft_budget_buckets",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("microsoft_budget_buckets")
