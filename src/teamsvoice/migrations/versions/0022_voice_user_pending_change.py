"""A voice user's record keeps the one-user change under way (`teams_voice_users.pending_change`: {"before": [number,
policy, calling], "wish": [...]}), written in the transaction that records the change's wish and cleared with its
outcome (`provisioning.service.record_wish`). A change sent again after its process died once the wish was committed
(a client's retry, a bulk item's recovery) found that wish on the record and took it for "before": Teams then
refusing the number, the refused number was put back on the record and the user's own listed free. (It replaces
this release's `fusion_bulk_items.voice_undo`, which kept the same for bulk items only and was never released.)

On the branch of the voice users' table, after 0019.

Revision ID: 0022_voice_user_pending_change
Revises: 0019_voice_user_microsoft_id
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_voice_user_pending_change"
down_revision = "0019_voice_user_microsoft_id"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("teams_voice_users", sa.Column("pending_change", sa.JSON(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite since 3.35): a batch rebuild of the table on SQLite would DROP it,
    # whose implicit DELETE the PBX users' and licences' foreign keys refuse.
    op.drop_column("teams_voice_users", "pending_change")
