"""Starts and stops the durable job engine, and holds what job steps need (they run in DBOS's threads,
so they use a synchronous engine of their own rather than the API's async one)."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from dbos import DBOS, SetWorkflowID
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
    for name in WORKFLOW_MODULES:
        importlib.import_module(name)

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


def resume_orphaned_work() -> int:
    """A crash between a commit and its enqueue leaves work recorded but not started: each workflow module
    that can have such work exposes `resume_orphaned()` (idempotent: workflow ids derive from the work).
    Call from a thread (DBOS's synchronous API refuses to run inside an event loop)."""
    resumed = 0
    for name in WORKFLOW_MODULES:
        if resume := getattr(importlib.import_module(name), "resume_orphaned", None):
            resumed += resume()
    return resumed


def stop_jobs() -> None:
    global _context
    DBOS.destroy(workflow_completion_timeout_sec=0)
    if _context is not None:
        _context.http.close()
        _context.engine.dispose()
    _context = None


def start_once(workflow_id: str, workflow: Callable[..., Any], *args: Any) -> bool:
    """Starts `workflow` under `workflow_id` unless a workflow with that id exists already (running,
    recovered or finished). Used for enqueue-after-commit and for resuming orphaned work; never starts a
    second execution beside one that DBOS recovery is running."""
    if DBOS.get_workflow_status(workflow_id) is not None:
        return False
    with SetWorkflowID(workflow_id):
        DBOS.start_workflow(workflow, *args)
    return True
