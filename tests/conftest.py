"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL that the suite starts.

`backend` is a session-scoped parameter, so pytest runs all SQLite cases, then all PostgreSQL cases, each
against one live teamsvoice server (API + job engine) and one Microsoft 365 emulator over loopback.
Set TEAMSVOICE_TEST_BACKENDS=sqlite (or postgresql) to run one of them.
"""

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from argon2 import profiles as argon2_profiles
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import delete, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import Pool

from teamsvoice import demo, models  # noqa: F401  (models: every table, for the wipe)
from teamsvoice.cli import app_registration
from teamsvoice.cli_common import embedded_settings
from teamsvoice.core import security
from teamsvoice.core.db import Base, create_engine, session_factory, sync_url, upgrade_database
from teamsvoice.jobs.models import JobExecutor
from teamsvoice.jobs.runtime import job_context
from teamsvoice.settings import Settings
from tests.support.live import LiveServer, bound_socket
from tests.support.postgres import PostgresServer
from tests.support.profile import Profiler, watch_postgres
from tests.support.receiver import WebhookReceiver

BACKENDS = [b for b in os.environ.get("TEAMSVOICE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
# Every emulator the suite starts (in process or as `teamsvoice serve`/`emulator` children, which inherit
# this) answers without Microsoft's request budgets, so tests run at the machine's speed; the tests of the
# limits turn them on with PUT /_admin/faults {"limits": "microsoft"}.
os.environ.setdefault("M365_EMULATOR_LIMITS", "off")
# Likewise teamsvoice's budget scheduler (microsoft/budget.py) runs at rates that do not bind; tests/unit/
# test_budget.py checks it at Microsoft's limits on a fake clock. (`serve` children started with a clean
# TEAMSVOICE_* environment keep the real limits.)
os.environ.setdefault("TEAMSVOICE_MICROSOFT_TEAMS_REQUESTS_PER_SECOND", "3000")
os.environ.setdefault("TEAMSVOICE_MICROSOFT_TEAMS_APP_REQUESTS_PER_SECOND", "30000")
# Passwords and client secrets hashed in this process (each test's demo organisation: six hashes; the live
# server's logins, one check each) use argon2-cffi's cheapest parameters, its profile for tests: with the
# product's (RFC 9106, 64 MiB, three passes) they cost about a third of a CPU second each, most of the suite's
# CPU time. A hash names its parameters, so either kind verifies; processes the tests start (`serve`, `api`,
# `worker`, the CLI in a process) hash as the product does (tests/unit/test_security.py checks those).
security._hasher = PasswordHasher.from_parameters(argon2_profiles.CHEAPEST)


@event.listens_for(Pool, "connect")
def _no_disk_sync_per_commit(dbapi_connection: Any, _record: Any) -> None:
    """The suite's SQLite databases (the application's and the job engine's, in this process) sync the disk
    at checkpoints instead of at every commit, as its PostgreSQL runs with fsync=off: a killed process still
    loses nothing (write-ahead log), only a power cut could, and no test cuts the power. A bulk item costs about
    fourteen commits (the job engine's and ours), each sync 6-7 ms on this machine's disk, behind SQLite's one
    writer."""
    if isinstance(dbapi_connection, sqlite3.Connection) or "sqlite" in type(dbapi_connection).__module__:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


_PROFILER = (Profiler(os.environ["TEAMSVOICE_TEST_PROFILE"], os.environ.get("PYTEST_XDIST_WORKER", "main"))
             if os.environ.get("TEAMSVOICE_TEST_PROFILE") else None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """TEAMSVOICE_TEST_PROFILE=FILE: each test's wall and CPU time, one JSON line per test (tests/support/profile.py)."""
    if _PROFILER is None:
        yield
    else:
        yield from _PROFILER.measure(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if _PROFILER is not None:
        _PROFILER.outcome(item, report.get_result())


@dataclass
class Emulator:
    url: str
    ca_cert_path: Path
    tenants: list[dict]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    watch_postgres(server.root)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from m365_emulator.server import EmulatorServer
    from m365_emulator.settings import EmulatorSettings

    directory = tmp_path_factory.mktemp("m365")
    server = EmulatorServer(EmulatorSettings(data_dir=directory, public_url=""), host="127.0.0.1", port=0)
    server.start()
    tenants = demo.seed_microsoft_tenants(server.url, str(server.ca_cert_path))
    yield Emulator(server.url, Path(server.ca_cert_path), tenants)
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'teamsvoice.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"tv_{uuid.uuid4().hex[:10]}")
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


@dataclass
class Live:
    url: str
    settings: Settings
    emulator: Emulator


@pytest.fixture(scope="session")
def live(database_url: str, emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from teamsvoice.app import create_app

    data_dir = tmp_path_factory.mktemp("data")
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = embedded_settings(
        # No hourly schedules in the suite's server (aligned to the clock, they fired at the top of an hour inside
        # tests that count what a scan or a purge also touches: a drift scan between a test's out-of-band changes and
        # its webhook's registration took the events it waited for); tests start those jobs themselves.
        Settings(data_dir=data_dir, database_url=database_url, public_url=url,
                 webhook_retry_initial_seconds=0.2, webhook_retry_max_seconds=1.0,
                 drift_scan_interval_seconds=0, audit_purge_interval_seconds=1e9),
        emulator.url, emulator.ca_cert_path, app_registration(data_dir),
    )
    demo.register_application(emulator.url, str(emulator.ca_cert_path), client_id=settings.microsoft_client_id,
                              client_secret=settings.microsoft_client_secret,
                              redirect_uri=f"{url}/restricted/handleResponse")
    server = LiveServer(create_app(settings), sock).start()
    yield Live(url, settings, emulator)
    server.stop()


def _wipe(database_url: str, *, keep_executor: str) -> None:
    """Every row gone, but the beating row of the live server's job engine (`keep_executor`), which runs on from
    test to test: wiped, it was gone until the next beat (up to 2 s), and a test that asked in that window found no
    live worker (`teamsvoice doctor`: "no process has beaten in the last 10 s"). The live server's job engine keeps
    running meanwhile (its drift scan may add a drift settings row for an enterprise after that table was emptied
    and before enterprises are): then the wipe finds the row's foreign key in its way and starts again."""
    engine = create_sync_engine(sync_url(database_url))
    try:
        for attempt in range(5):
            try:
                with engine.begin() as connection:
                    for table in reversed(Base.metadata.sorted_tables):
                        if table.name == JobExecutor.__tablename__:
                            connection.execute(delete(table).where(table.c.executor_id != keep_executor))
                        else:
                            connection.execute(text(f"DELETE FROM {table.name}"))
                return
            except IntegrityError:
                if attempt == 4:
                    raise
    finally:
        engine.dispose()


@pytest.fixture
async def organisation(live: Live) -> demo.DemoOrganisation:
    """A clean database holding only the demo provider tree."""
    _wipe(live.settings.effective_database_url, keep_executor=job_context().executor_id)
    engine = create_engine(live.settings.effective_database_url)
    async with session_factory(engine)() as session:
        organisation = await demo.seed_organisation(session)
        await session.commit()
    await engine.dispose()
    assert organisation is not None
    return organisation


@pytest.fixture
async def client(live: Live, organisation: demo.DemoOrganisation) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        yield http


# Modules whose tests, on each backend, start `teamsvoice serve` of their own and never use the session's live
# server or database: the scheduler hands them out as modules, beside the backends' workers, not on them.
OWN_SERVER_MODULES = ("tests/e2e/test_serve.py", "tests/e2e/test_shutdown.py", "tests/e2e/test_fusion_users.py")
# Modules that use their backend's session but go out apart from the backend's worker, as a group per backend: the
# 1,000-row import runs about 3 minutes per backend beside the rest of the suite, on the backends' workers the
# longest path of the run (a profiled run: backends' workers 620 and 665 s, the other two 415 s). The worker that
# takes one starts that backend's session too (its PostgreSQL, live server and emulator: a few seconds). The jobs
# catalogue joined it when the backends' workers were the run's longest path again (2026-12-03: their tests 646 and
# 610 s in a 676 s run, the other two workers' 528 s each; the catalogue 53 and 45 s). The OpenAPI fuzz module
# joined it for the same reason (2026-12-03, a run of 503 s: the backends' workers 465 and 480 s of tests, the other
# two 405 and 401 s; the fuzz module 22 and 26 s per backend). Sending the whole console and fuzz directories apart
# (about 150 s per backend) overshot: the other two workers became the longest path. The Fusion users and MS Teams
# tenant modules joined it (2026-12-06, a run of 570 s: the backends' workers 558 and 516 s of tests, the other two
# 319 s each; the two modules 61 and 54 s per backend), then the groups-and-sync and templates-and-resource-accounts
# modules (a run of 556 s: 543 and 497 s, the other two 394 s; the two 52 and 48 s per backend).
APART_MODULES = ("tests/cli/test_bulk_import_1000.py", "tests/cli/test_jobs_catalogue.py", "tests/fuzz/test_openapi_fuzz.py",
                 "tests/api/fusion/test_users.py", "tests/api/fusion/test_msteams_tenant.py",
                 "tests/api/fusion/test_groups_and_sync.py", "tests/api/fusion/test_templates_and_resource_accounts.py")


def xdist_group_of(nodeid: str) -> str:
    """With pytest-xdist (`-n 4`, as scripts/test runs the suite), each backend's tests stay on one worker, which
    starts that backend's live server, job engine and emulator once; tests without a backend, and those of
    OWN_SERVER_MODULES, are shared out a module at a time among the other workers (a module's tests may build on
    each other: the SDK fidelity module's last test checks what the others sent)."""
    module = nodeid.split("::", 1)[0]
    params = nodeid.rsplit("[", 1)[1].rstrip("]").split("-") if nodeid.endswith("]") else []
    backend = next((b for b in ("sqlite", "postgresql") if b in params), None)
    if backend and module in APART_MODULES:
        return f"{module}[{backend}]"
    return f"backend-{backend}" if backend and module not in OWN_SERVER_MODULES else module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """OWN_SERVER_MODULES run on workers without their backend's session: none of their tests may use it. Tests
    marked `any_backend` (a page the browser renders from the live server, no database read) run on the first
    selected backend only: the other backend's case is deselected, not skipped."""
    for item in items:
        if item.nodeid.split("::", 1)[0] in OWN_SERVER_MODULES and "database_url" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} uses the session's live server or database, but its module is in "
                                    "tests/conftest.py's OWN_SERVER_MODULES (scheduled apart from its backend's worker)")
    other = [item for item in items if item.get_closest_marker("any_backend") and BACKENDS
             and not item.nodeid.endswith(f"[{BACKENDS[0]}]")]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [item for item in items if item not in other]


# Directories whose modules start processes, servers or a browser: one of them handed out last would end the
# run alone (the fleet module is one test of about a minute), so they go out before the quick modules.
PROCESS_HEAVY = ("tests/e2e/", "tests/sbc/", "tests/cli/", "tests/console/", "tests/fuzz/")


def xdist_order(scope: str, size: int) -> tuple[int, int]:
    """The order the scheduler hands out work: both backends' groups first (the longest by far, one each to
    the first two workers), then the APART_MODULES' groups (the longest single tests, to the other two workers from
    the start), then the process-heavy modules, then the rest; within each, more tests first."""
    if scope.startswith("backend-"):
        return 0, -size
    return (1 if scope.split("[", 1)[0] in APART_MODULES else 2 if scope.startswith(PROCESS_HEAVY) else 3), -size


@pytest.hookimpl(optionalhook=True)  # (without xdist, `-p no:xdist`, the hook does not exist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class ByBackend(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

        def _assign_work_unit(self, node: object) -> None:
            first = min(self.workqueue, key=lambda scope: xdist_order(scope, len(self.workqueue[scope])))
            self.workqueue.move_to_end(first, last=False)
            super()._assign_work_unit(node)  # type: ignore[arg-type]

    return ByBackend(config, log)
