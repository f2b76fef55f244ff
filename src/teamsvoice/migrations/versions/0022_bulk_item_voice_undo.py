"""A bulk item keeps the voice settings its user had before the item's first attempt, with the settings it recorded
(`fusion_bulk_items.voice_undo`: {"before": [number, policy, calling], "wish": [...]}), written in the transaction
that records the item's wish. A run of the item after a crash (recovery) found the dead run's wish on the user's
record and took it for "before": Teams then refusing the number, the refused number was put back on the record.

On the Fusion tables' branch, after 0020.

Revision ID: 0022_bulk_item_voice_undo
Revises: 0020_fusion_group_reads
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_bulk_item_voice_undo"
down_revision = "0020_fusion_group_reads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fusion_bulk_items", sa.Column("voice_undo", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fusion_bulk_items") as batch:
        batch.drop_column("voice_undo")
