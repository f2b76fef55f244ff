"""The job engine's own table: one row per worker process, beating while it lives."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from teamsvoice.core.db import Base


class JobExecutor(Base):
    """A process that runs durable work. `stopped` (a clean exit) or a stale `heartbeat_at` (a crash) tells
    the live workers to recover its unfinished workflows."""

    __tablename__ = "job_executors"

    executor_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
