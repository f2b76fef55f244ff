"""Failed-login counters and console sign-outs, shared by every API process through the database."""

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


class ConsoleSignOut(Base):
    """A console session signed out before its cookie expired: the SHA-256 of the cookie's session token, refused
    until `expires_at` (when the cookie would have ended anyway; the row may go then)."""

    __tablename__ = "console_signouts"

    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
