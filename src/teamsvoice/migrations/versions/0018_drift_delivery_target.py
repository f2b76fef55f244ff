"""A drift event delivery keeps the URL and the signing secret (encrypted, as the webhook keeps it) it was made for:
a delivery still pending when its reseller registered the webhook again was sent to the new URL signed with the new
secret, and the job catalogue named the new URL for deliveries made to the old one. Existing deliveries get their
webhook's URL and secret: where they went until now.

On the voice-state branch, after 0017.

Revision ID: 0018_drift_delivery_target
Revises: 0017_one_apply_per_tenant
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_drift_delivery_target"
down_revision = "0017_one_apply_per_tenant"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("voice_drift_deliveries", sa.Column("url", sa.String(2000), nullable=True))
    op.add_column("voice_drift_deliveries", sa.Column("secret_encrypted", sa.Text(), nullable=True))
    deliveries = sa.table("voice_drift_deliveries", sa.column("webhook_id", sa.Integer), sa.column("url", sa.String),
                          sa.column("secret_encrypted", sa.Text))
    hooks = sa.table("voice_drift_webhooks", sa.column("id", sa.Integer), sa.column("url", sa.String),
                     sa.column("secret_encrypted", sa.Text))

    def of_webhook(column: str) -> sa.ScalarSelect:
        return sa.select(hooks.c[column]).where(hooks.c.id == deliveries.c.webhook_id).scalar_subquery()

    op.execute(deliveries.update().values(url=of_webhook("url"), secret_encrypted=of_webhook("secret_encrypted")))


def downgrade() -> None:
    with op.batch_alter_table("voice_drift_deliveries") as batch:
        batch.drop_column("secret_encrypted")
        batch.drop_column("url")
