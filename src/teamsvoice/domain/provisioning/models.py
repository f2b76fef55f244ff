"""What teamsvoice wants a Teams user's voice configuration to be, per enterprise."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base


class TeamsVoiceUser(Base):
    __tablename__ = "teams_voice_users"
    __table_args__ = (UniqueConstraint("enterprise_id", "user_principal_name", name="uq_voice_user_upn"),
                      Index("ix_voice_user_microsoft_id", "enterprise_id", "microsoft_user_id"))  # (migration 0019)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    user_principal_name: Mapped[str] = mapped_column(String(255))
    microsoft_user_id: Mapped[str | None] = mapped_column(String(64))
    phone_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    voice_routing_policy: Mapped[str | None] = mapped_column(String(200))
    calling_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # A one-user change under way (recorded, Teams not yet answered): the voice settings before it and those it
    # recorded, {"before": [number, policy, calling], "wish": [...]}, written with its wish and cleared with its
    # outcome (`service.record_wish`, migration 0022). Found by a change sent again after its process died.
    pending_change: Mapped[dict | None] = mapped_column(JSON)
    last_sync_status: Mapped[str | None] = mapped_column(String(40))
    last_sync_detail: Mapped[dict | None] = mapped_column(JSON)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    def settle(self) -> None:
        """Its change has an outcome, or its settings are taken from Teams (adopted, freed): nothing is pending."""
        if self.pending_change is not None:
            self.pending_change = None
