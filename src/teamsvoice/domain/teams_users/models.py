"""Fusion MS Teams users beyond number/VRP (which live on the shared `TeamsVoiceUser`): customer licences,
templates, bulk jobs with one row per item, and resource accounts with their asynchronous state."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base
from teamsvoice.core.ids import new_uuid


class FusionUserLicences(Base):
    """The customer licences (provider SKUs, not Microsoft's) of one Teams user or resource account."""

    __tablename__ = "fusion_user_licences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    voice_user_id: Mapped[int] = mapped_column(ForeignKey("teams_voice_users.id", ondelete="CASCADE"), unique=True)
    customer_licenses: Mapped[list[str]] = mapped_column(JSON, default=list)


class FusionTemplate(Base):
    """A subscription's user template (vendor-notes 2.6): country, MS licences, MS groups, VRP."""

    __tablename__ = "fusion_templates"
    __table_args__ = (UniqueConstraint("subscription_id", "name", name="uq_fusion_template_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    product_key: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(2))
    vrp: Mapped[str | None] = mapped_column(String(200))
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    licenses: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionBulkJob(Base):
    """A bulk update: recorded with all its items before any is applied; progress counted as items end."""

    __tablename__ = "fusion_bulk_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)  # the workflow id
    job_id: Mapped[str] = mapped_column(String(40))  # the vendor's "job_id" (creation epoch seconds)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30), default="ms_users")
    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, success, partial, error
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionBulkItem(Base):
    """One user of a bulk job. `status` goes pending -> success | error exactly once."""

    __tablename__ = "fusion_bulk_items"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_fusion_bulk_item_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("fusion_bulk_jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    upn: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    error: Mapped[dict | None] = mapped_column(JSON)  # core.errors.describe: {"kind", "code", "message", ...}
    details: Mapped[dict | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class FusionResourceAccount(Base):
    """A call queue / auto attendant resource account. Created and changed by a durable job; `status` is
    the intermediate state the API reports until Microsoft's work is done."""

    __tablename__ = "fusion_resource_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("fusion_subscriptions.id"), index=True)
    user_principal_name: Mapped[str] = mapped_column(String(255))
    microsoft_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    voice_user_id: Mapped[int | None] = mapped_column(ForeignKey("teams_voice_users.id"))
    display_name: Mapped[str] = mapped_column(String(255))
    account_type: Mapped[str] = mapped_column(String(20))  # call-queue or auto-attendant
    location: Mapped[str] = mapped_column(String(2))
    # What the job must bring Microsoft to: {"phoneNumber", "vrp", "displayName", "accountType", "location"}.
    desired: Mapped[dict] = mapped_column(JSON, default=dict)
    customer_licenses: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="creating")  # creating, updating, deleting, active, error
    generation: Mapped[int] = mapped_column(Integer, default=1)  # bumped by each change; names its workflow
    error: Mapped[str | None] = mapped_column(Text)
    created_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_on: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
