"""The audit log: one row per change of an aggregate a provider cares about (or per sign-in, or per write call
that changed no row of ours), written in the same database transaction as the change itself."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base


class AuditEntry(Base):
    """Who (`actor*`), when (`at`), through what (`family`: connecttoteams, fusion, teamsvoice, console, job,
    system; `source`: the route template or console page), did what (`action`, e.g. "enterprise.update") to
    which object (`aggregate`, `object_id`, `object_label`), of which customer (`enterprise_id`, `customer`,
    `tenant`: the Microsoft tenant id), with the values before and after (secrets masked).

    `owner_reseller_id` is the reseller node the changed object belongs to (the customer's reseller): a staff
    member sees the entries whose owner is in its scope. No foreign keys: entries outlive what they describe."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_owner_at", "owner_reseller_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    family: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(255))
    actor_login_id: Mapped[int | None] = mapped_column(Integer)
    actor_reseller_id: Mapped[int | None] = mapped_column(Integer)
    on_behalf_of: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(400))
    request_id: Mapped[str | None] = mapped_column(String(64))
    source_ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80), index=True)
    aggregate: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str | None] = mapped_column(String(255))
    object_label: Mapped[str | None] = mapped_column(String(400))
    owner_reseller_id: Mapped[int | None] = mapped_column(Integer)
    enterprise_id: Mapped[int | None] = mapped_column(Integer)
    customer: Mapped[str | None] = mapped_column(String(255))
    tenant: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
