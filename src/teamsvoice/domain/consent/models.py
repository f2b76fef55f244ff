"""Consent requests (action item URLs), granted consents, and webhook deliveries of their outcome."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base
from teamsvoice.core.ids import new_uuid


class ActionRequest(Base):
    """One URL handed out by getActionItemUrl. Its state parameter names this row; it can be used once."""

    __tablename__ = "action_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    action_type: Mapped[str] = mapped_column(String(60))
    redirect_url: Mapped[str] = mapped_column(Text)
    state_key: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EnterpriseConsent(Base):
    __tablename__ = "enterprise_consents"
    __table_args__ = (UniqueConstraint("enterprise_id", "consent_name", name="uq_consent_per_enterprise"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    consent_name: Mapped[str] = mapped_column(String(60))
    tenant_id: Mapped[str] = mapped_column(String(64))
    granted_by: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebhookDelivery(Base):
    """A JSON document owed to a provider's redirectUrl. Delivered by a durable job, retried until it lands."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Names the delivery's durable workflow; unlike `id`, never reused (SQLite reuses freed rowids).
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # Holds Microsoft tokens: encrypted at rest.
    payload_encrypted: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, delivered, refused (never sent)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)
