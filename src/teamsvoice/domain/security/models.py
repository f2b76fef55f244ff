"""Failed-login counters, shared by every API process through the database."""

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import Base


class LoginThrottle(Base):
    """One account or one client address that failed to log in. `key_digest` is the SHA-256 of
    "account:<family>:<name>" or "address:<ip>" (no username typed by mistake is stored in clear)."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
