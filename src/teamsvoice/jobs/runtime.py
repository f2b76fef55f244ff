"""Starts and stops the durable job engine, and holds what job steps need (they run in DBOS's threads,
so they use a synchronous engine of their own rather than the API's async one)."""

import importlib
from dataclasses import dataclass

import httpx
from dbos import DBOS
from sqlalchemy import Engine, create_engine

from teamsvoice.core.db import sync_url
from teamsvoice.core.security import Keyring
from teamsvoice.settings import Settings


@dataclass
class JobContext:
    settings: Settings
    keyring: Keyring
    engine: Engine
    http: httpx.Client


_context: JobContext | None = None

# Every module that defines DBOS workflows; add yours here. A module may define `resume_orphaned()`.
WORKFLOW_MODULES = ["teamsvoice.jobs.webhooks", "teamsvoice.domain.calling.workflows", "teamsvoice.jobs.fusion_wizard",
                    "teamsvoice.domain.teams_users.workflows"]


def job_context() -> JobContext:
    if _context is None:
        raise RuntimeError("The job engine is not started")
    return _context


def system_database_url(settings: Settings) -> str:
    if settings.is_sqlite:
        return f"sqlite:///{(settings.data_dir / 'teamsvoice-jobs.sqlite3').resolve()}"
    return settings.effective_database_url


def start_jobs(settings: Settings, keyring: Keyring) -> None:
    """Launching DBOS also resumes every workflow a previous process left unfinished."""
    global _context
    # Workflows must be registered before launch, so that recovery finds them.
    modules = [importlib.import_module(name) for name in WORKFLOW_MODULES]

    _context = JobContext(
        settings=settings, keyring=keyring, engine=create_engine(sync_url(settings.effective_database_url)),
        http=httpx.Client(timeout=httpx.Timeout(15.0)),
    )
    DBOS(config={
        "name": "teamsvoice",
        "system_database_url": system_database_url(settings),
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    })
    DBOS.launch()
    # A crash between a commit and its enqueue leaves work recorded but not started: each module that can
    # have such work exposes `resume_orphaned()` (idempotent: workflow ids are derived from the work).
    for module in modules:
        if resume := getattr(module, "resume_orphaned", None):
            resume()


def stop_jobs() -> None:
    global _context
    DBOS.destroy(workflow_completion_timeout_sec=0)
    if _context is not None:
        _context.http.close()
        _context.engine.dispose()
    _context = None
