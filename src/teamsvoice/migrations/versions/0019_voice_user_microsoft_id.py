"""A voice user's record is also found by its Microsoft user id (a user renamed in Entra ID keeps its record:
`voice_users.find`), and the records of a page of Microsoft users are read by their ids (`by_microsoft_ids`):
an index on (enterprise, Microsoft user id) where each such read scanned the enterprise's records.

On the branch of the voice users' table, after 0001.

Revision ID: 0019_voice_user_microsoft_id
Revises: 0001
"""

from alembic import op

revision = "0019_voice_user_microsoft_id"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_voice_user_microsoft_id", "teams_voice_users", ["enterprise_id", "microsoft_user_id"])


def downgrade() -> None:
    op.drop_index("ix_voice_user_microsoft_id", table_name="teams_voice_users")
