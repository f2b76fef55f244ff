"""Plan / apply / drift records: apply jobs, drift events, per-tenant drift settings, the providers'
drift webhooks and their deliveries, numbers in quarantine after offboarding."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base
from teamsvoice.core.ids import new_uuid


UNFINISHED = ("queued", "running")  # an apply job in one of these holds its tenant


class VoiceApplyJob(Base):
    """One apply of a tenant: the plan it started from, the desired state it converges to (the export
    document), and each operation's result as it runs. A tenant has at most one unfinished apply (a unique index
    on the unfinished ones: applies started at the same moment each found none running, and each acted on
    Microsoft, assigning the same numbers and creating the same routes again)."""

    __tablename__ = "voice_apply_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    trigger: Mapped[str] = mapped_column(String(20), default="api")  # api, cli, auto
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, completed, failed
    differences: Mapped[list[dict]] = mapped_column(JSON, default=list)
    desired: Mapped[dict] = mapped_column(JSON, default=dict)
    results: Mapped[list[dict]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


Index("uq_voice_apply_jobs_unfinished", VoiceApplyJob.enterprise_id, unique=True,
      sqlite_where=VoiceApplyJob.status.in_(UNFINISHED), postgresql_where=VoiceApplyJob.status.in_(UNFINISHED))


class DriftEvent(Base):
    """One difference seen by drift scans, from first to last sighting; `resolved_at` once a scan no
    longer sees it (seen again later: a new event)."""

    __tablename__ = "voice_drift_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    difference_id: Mapped[str] = mapped_column(String(400))
    kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(10))
    drift: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    difference: Mapped[dict] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class TenantDriftSettings(Base):
    __tablename__ = "voice_drift_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), unique=True)
    auto_apply: Mapped[bool] = mapped_column(Boolean, default=False)
    last_scan_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_scan_error: Mapped[str | None] = mapped_column(Text)


class DriftWebhook(Base):
    """Where a reseller wants drift events, and the secret (encrypted) they are signed with."""

    __tablename__ = "voice_drift_webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reseller_id: Mapped[int] = mapped_column(ForeignKey("resellers.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DriftDelivery(Base):
    """A drift event owed to a reseller's webhook. It goes to the URL, signed with the secret, that the webhook had
    when the delivery was made (`url`, `secret_encrypted`: the Keyring's ciphertext, as the webhook keeps it), as a
    consent webhook delivery goes to its redirectUrl: a webhook registered again meanwhile gets the deliveries made
    from then on. Rows from before migration 0018 got their webhook's (`drift.delivery_target` is the rule)."""

    __tablename__ = "voice_drift_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("voice_drift_webhooks.id"), index=True)
    url: Mapped[str | None] = mapped_column(String(2000))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # the event; each try sends it stamped with its time (drift.stamped)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, delivered, refused, cancelled (jobs cancel)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class NumberQuarantine(Base):
    """A number freed by offboarding: no user may get it before `until`."""

    __tablename__ = "voice_number_quarantine"
    __table_args__ = (UniqueConstraint("e164", name="uq_voice_number_quarantine"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    e164: Mapped[str] = mapped_column(String(40))
    previous_holder: Mapped[str] = mapped_column(String(255))
    until: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
