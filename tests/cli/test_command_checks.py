"""What every command checks before it works, on files only (no server): the data directory comes from
TEAMSVOICE_DATA_DIR unless --data-dir names one."""

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from teamsvoice.cli import app

NO_DATABASE_URL = {"TEAMSVOICE_DATABASE_URL": None, "TEAMSVOICE_SECRET_KEY": None, "TEAMSVOICE_DATA_DIR": None}
UNREACHABLE = "https://127.0.0.1:9"  # the discard port: nothing listens on it here


def run(*args: str, env: dict | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=NO_DATABASE_URL | (env or {}))


def test_the_data_dir_setting_is_every_commands_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where `data` would be made
    configured, given = tmp_path / "configured", tmp_path / "given"
    env = {"TEAMSVOICE_DATA_DIR": str(configured)}
    migrated = run("migrate", env=env)
    assert migrated.exit_code == 0, migrated.stderr
    assert (configured / "teamsvoice.sqlite3").exists() and not (tmp_path / "data").exists()
    checked = run("doctor", "--offline", env=env)
    assert "[ok  ] database" in checked.stdout and str(configured) in checked.stdout
    assert run("migrate", "--data-dir", str(given), env=env).exit_code == 0  # the option wins
    assert (given / "teamsvoice.sqlite3").exists()
    assert not (tmp_path / "data").exists()


def one_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_operator_commands_refuse_a_data_dir_without_a_database(tmp_path: Path) -> None:
    """They said "No PBX users", "Reseller 3 not found"... from a `data` directory that was not the server's, and
    left an empty database (and a secret key) behind. `doctor` reports it as a failed check, creating nothing."""
    empty = tmp_path / "empty"
    empty.mkdir()
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,number\nu@x.example,\n")
    for command in (["sbc", "status"], ["drift"], ["plan", "x.example"], ["apply", "x.example"],
                    ["register-redirect-url", "3", "https://hooks.example/"], ["tenants", "list"], ["jobs", "list"],
                    ["jobs", "show", "webhook:1"], ["jobs", "cancel", "1"], ["jobs", "retry", "1"],
                    ["users", "export", "--tenant", "x.example"], ["bulk", "import", str(rows), "--subscription", "1"]):
        line = one_line(run(*command, "--data-dir", str(empty)))
        assert line == f"teamsvoice: no teamsvoice database in {empty}; give --data-dir or TEAMSVOICE_DATA_DIR (the server's)", command
        assert not list(empty.iterdir()), command
    line = one_line(run("tenants", "list", env={"TEAMSVOICE_DATABASE_URL": f"sqlite:///{empty}/elsewhere.sqlite3"}))
    assert f"no teamsvoice database at {empty}/elsewhere.sqlite3" in line
    checked = run("doctor", "--data-dir", str(empty))
    assert checked.exit_code == 1 and "[FAIL] database:" in checked.stdout and "does not exist" in checked.stdout
    assert not list(empty.iterdir())


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """As `migrate` says it: a SQLAlchemy traceback (exit 1) before; a server that accepts the connection but never
    answers held the command about two minutes."""
    import socket
    import time

    from tests.support.postgres import free_port

    rows = tmp_path / "rows.csv"
    rows.write_text("upn,number\nu@x.example,\n")
    dead = {"TEAMSVOICE_DATABASE_URL": f"postgresql://tv:secret-pw@127.0.0.1:{free_port()}/tv"}
    for command in (["tenants", "list"], ["jobs", "list"], ["jobs", "show", "1"], ["sbc", "status"],
                    ["bulk", "import", str(rows), "--subscription", "1", "--dry-run"]):
        line = one_line(run(*command, "--data-dir", str(tmp_path), env=dead))
        assert "cannot reach the database postgresql://tv:***@127.0.0.1" in line and "secret-pw" not in line, command
    with socket.socket() as silent:  # accepts (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        line = one_line(run("tenants", "list", "--data-dir", str(tmp_path), env={
            "TEAMSVOICE_DATABASE_URL": f"postgresql://tv:pw@127.0.0.1:{silent.getsockname()[1]}/tv"}))
    assert "cannot reach the database" in line and time.monotonic() - started < 30
    assert not list(tmp_path.glob("*.sqlite3"))


def test_backup_is_never_written_into_the_data_directory(tmp_path: Path) -> None:
    """`backup DATA/teamsvoice.sqlite3` replaced the live database with the archive, `backup DATA/secret.key` the key."""
    data = tmp_path / "data"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    (data / "secret.key").write_text("key")
    database = (data / "teamsvoice.sqlite3").read_bytes()
    (tmp_path / "link").symlink_to(data)  # the directory by another name
    (tmp_path / "file-link.tar").symlink_to(data / "new.tar")  # a link to a file in it (not there yet)
    for target in (data / "teamsvoice.sqlite3", data / "secret.key", data, data / "sub" / ".." / "backup.tar",
                   tmp_path / "link" / "teamsvoice.sqlite3", tmp_path / "file-link.tar"):
        line = one_line(run("backup", str(target), "--data-dir", str(data)))
        assert f"inside the data directory {data}" in line, target
    assert (data / "teamsvoice.sqlite3").read_bytes() == database and (data / "secret.key").read_text() == "key"
    assert sorted(p.name for p in data.iterdir()) == ["secret.key", "teamsvoice.sqlite3"]
    elsewhere = tmp_path / "db" / "own.sqlite3"  # a database named by its URL, outside the data directory
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(database)
    line = one_line(run("backup", str(elsewhere), "--data-dir", str(data),
                        env={"TEAMSVOICE_DATABASE_URL": f"sqlite:///{elsewhere}"}))
    assert "(or is its database)" in line and elsewhere.read_bytes() == database
    made = run("backup", str(tmp_path / "backup.tar"), "--data-dir", str(data))
    assert made.exit_code == 0, made.stderr


def test_bulk_import_checks_its_results_file_before_anything_runs(tmp_path: Path) -> None:
    """The whole job ran, then writing --results failed with a FileNotFoundError traceback (exit 1)."""
    data, rows = tmp_path / "data", tmp_path / "rows.csv"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    rows.write_text("upn,number\nu@x.example,\n")
    for results, reason in ((tmp_path / "missing" / "out.csv", "No such file or directory"), (tmp_path, "Is a directory")):
        for dry_run in ([], ["--dry-run"]):  # (subscription 1 does not exist: the results are checked first)
            line = one_line(run("bulk", "import", str(rows), "--subscription", "1", "--results", str(results), *dry_run,
                                "--data-dir", str(data)))
            assert line == f"teamsvoice: cannot write the results to {results}: {reason}", line
    kept = tmp_path / "kept.csv"
    kept.write_text("earlier results\n")
    refused = run("bulk", "import", str(rows), "--subscription", "1", "--results", str(kept), "--data-dir", str(data))
    assert refused.exit_code == 2 and "results" not in refused.stderr and kept.read_text() == "earlier results\n"
    assert not (tmp_path / "missing").exists()


def test_sbc_status_of_an_unknown_enterprise_is_not_found(tmp_path: Path) -> None:
    assert run("migrate", "--data-dir", str(tmp_path)).exit_code == 0
    key = {"TEAMSVOICE_SECRET_KEY": "the-servers-key"}
    assert one_line(run("sbc", "status", "--enterprise-id", "99", "--data-dir", str(tmp_path), env=key)) == \
        "teamsvoice: Enterprise 99 not found"
    assert run("sbc", "status", "--data-dir", str(tmp_path), env=key).exit_code == 0  # the platform's: no PBX users


def test_an_id_beyond_the_databases_range_is_refused_in_words(tmp_path: Path) -> None:
    """An id past 64 bits reached the database driver: an OverflowError traceback, exit 1 (and on PostgreSQL one past
    32 bits, the id columns' `integer`: "integer out of range", a traceback too); so did a --limit past 64 bits."""
    assert run("migrate", "--data-dir", str(tmp_path)).exit_code == 0
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,number\nu@x.example,\n")
    big = str(2**31)
    for command, option in ((["bulk", "import", str(rows), "--subscription", big, "--dry-run"], "--subscription"),
                            (["sbc", "status", "--enterprise-id", big], "--enterprise-id"),
                            (["register-redirect-url", big, "https://hooks.example/"], "reseller_id")):
        refused = run(*command, "--data-dir", str(tmp_path))
        assert refused.exit_code == 2 and "Traceback" not in refused.output, (command, refused.output)
        assert f"Invalid value for '{option}'" in refused.output, (command, refused.output)
    listed = run("jobs", "list", "--limit", "9" * 30, "--data-dir", str(tmp_path))
    assert listed.exit_code == 0 and listed.exception is None, listed.output


def linked_tenant(data: Path) -> None:
    """A data directory migrated, with one enterprise linked to a tenant (`tenant-of-contoso`)."""
    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.domain.orgs.models import Enterprise, Reseller

    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    engine = create_blocking_engine(f"sqlite:///{data}/teamsvoice.sqlite3")
    try:
        with sync_transaction(engine) as session:
            reseller = Reseller(name="Reseller", level="RESELLER", registered_redirect_urls=[])
            session.add(reseller)
            session.flush()
            session.add(Enterprise(reseller_id=reseller.id, enterprise_name="Contoso", tenant_id="tenant-of-contoso",
                                   registered=True))
    finally:
        engine.dispose()


def test_a_drift_scan_that_could_not_ask_microsoft_fails(tmp_path: Path) -> None:
    """`drift --scan` recorded each failed scan and said "No open drift.", exit 0: as if every tenant matched (or, when
    Microsoft did not answer, printed a traceback: its reads' ExceptionGroup, `plan` too). Nothing listens on port 9."""
    linked_tenant(tmp_path)
    unreachable = {"TEAMSVOICE_MICROSOFT_CLIENT_ID": "app", "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "secret",
                   "TEAMSVOICE_MICROSOFT_LOGIN_URL": UNREACHABLE,
                   "TEAMSVOICE_MICROSOFT_GRAPH_URL": f"{UNREACHABLE}/v1.0",
                   "TEAMSVOICE_MICROSOFT_POWERSHELL_URL": f"{UNREACHABLE}/_powershell/invoke"}
    for as_json in ([], ["--json"]):
        scanned = run("drift", "--scan", *as_json, "--data-dir", str(tmp_path), env=unreachable)
        assert scanned.exit_code == 1 and not isinstance(scanned.exception, Exception), repr(scanned.exception)
        assert "teamsvoice: could not scan tenant tenant-of-contoso (Contoso): Microsoft sign-in service unavailable" \
            in scanned.stderr, scanned.stderr
        assert "(Microsoft failed transiently: not recorded; run it again)" in scanned.stderr, scanned.stderr
    assert scanned.stdout.strip() == "[]"  # (--json: stdout stays the list of events)
    # Microsoft not answering is no scan of the tenant: nothing recorded as its last scan (as the scheduled scans).
    from sqlalchemy import select

    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.domain.voice_state.models import TenantDriftSettings

    engine = create_blocking_engine(f"sqlite:///{tmp_path}/teamsvoice.sqlite3")
    try:
        with sync_transaction(engine) as session:
            assert [e for e in session.scalars(select(TenantDriftSettings.last_scan_error)) if e] == []
    finally:
        engine.dispose()
    assert run("drift", "--data-dir", str(tmp_path), env=unreachable).exit_code == 0  # no scan: nothing failed
    line = one_line(run("plan", "tenant-of-contoso", "--data-dir", str(tmp_path), env=unreachable))
    assert line.startswith("teamsvoice: Microsoft sign-in service unavailable"), line


def test_a_list_setting_that_is_not_json_is_one_line(tmp_path: Path) -> None:
    """pydantic-settings' SettingsError (a list setting that is not JSON) was not caught: a traceback, exit 1. The
    quoted form is what a docker or podman --env-file passes on from a file written for systemd."""
    data = tmp_path / "data"
    for name, value, said in (
            ("TEAMSVOICE_CORS_ALLOWED_ORIGINS", "https://portal.example",
             'it takes a JSON list, e.g. TEAMSVOICE_CORS_ALLOWED_ORIGINS=["https://portal.example"]'),
            ("TEAMSVOICE_TRUSTED_PROXIES", """'["10.0.0.2"]'""",
             """its value is in quotes ('["10.0.0.2"]'), as a docker or podman --env-file keeps them: """
             """write TEAMSVOICE_TRUSTED_PROXIES=["10.0.0.2"]"""),
            ("TEAMSVOICE_SBC_MICROSOFT_PROXIES", "",
             "it takes a JSON list, e.g. TEAMSVOICE_SBC_MICROSOFT_PROXIES=[] (none; or leave it unset)")):
        for command in (["migrate"], ["tenants", "list"], ["doctor"]):
            line = one_line(run(*command, "--data-dir", str(data), env={name: value}))
            assert line == f"teamsvoice: setting {name} is invalid: {said}", (command, line)
    assert not data.exists()


def _behind(data: Path) -> list[str]:
    """A database one migration behind this release (its newest revision forgotten), as a new release's CLI finds
    production before its `teamsvoice migrate`."""
    import sqlite3

    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    connection = sqlite3.connect(data / "teamsvoice.sqlite3")
    with connection:
        connection.execute("DELETE FROM alembic_version WHERE version_num = (SELECT MAX(version_num) FROM alembic_version)")
        revisions = sorted(row[0] for row in connection.execute("SELECT version_num FROM alembic_version"))
    connection.close()
    return revisions


# Every command that reads or writes teamsvoice's database, with arguments that reach it (ROWS: a CSV file)...
WORKS_ON_THE_DATABASE = {
    "register-redirect-url": ["1", "https://hooks.example/"], "sbc status": [], "plan": ["x.example"],
    "apply": ["x.example"], "drift": [], "tenants list": [], "jobs list": [], "jobs show": ["1"], "jobs cancel": ["1"],
    "jobs retry": ["1"], "bulk import": ["ROWS", "--subscription", "1"], "users export": ["--tenant", "x.example"]}
# ... and the others: the servers and `migrate` migrate it, `doctor` reports it, `backup` and `restore` copy and
# replace its file, `emulator` and `sbc init-db` work on databases of their own.
NOT_ON_AN_EXISTING_DATABASE = {"serve", "api", "worker", "emulator", "migrate", "doctor", "backup", "restore",
                               "sbc init-db"}


def _command_names() -> set[str]:
    """Every command of `teamsvoice --help` and of each group's help ("jobs list")."""
    import typer

    def walk(group: typer.core.TyperGroup, prefix: str) -> set[str]:
        names = set()
        for name, command in group.commands.items():
            group_of_its_own = isinstance(command, typer.core.TyperGroup)
            names |= walk(command, f"{prefix}{name} ") if group_of_its_own else {f"{prefix}{name}"}
        return names

    return walk(typer.main.get_command(app), "")  # type: ignore[arg-type]


def test_only_migrate_and_the_servers_migrate(tmp_path: Path) -> None:
    """`register-redirect-url`, `sbc status`, `plan`, `apply` and `drift` migrated the database themselves: a new
    release's CLI run against production migrated it before the operator's `teamsvoice migrate` (README, Upgrades).
    They refuse a database behind (or ahead of) this release's migrations now, and leave it as it is; and so does
    every other command that works on the database (`tenants list`, `jobs`, `bulk import`, `users export` read and
    wrote it unchecked), `bulk import --dry-run` too."""
    import sqlite3

    assert _command_names() == set(WORKS_ON_THE_DATABASE) | NOT_ON_AN_EXISTING_DATABASE  # a new command is placed
    data = tmp_path / "data"
    revisions = _behind(data)
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,vrp\nu@x.example,teamsvoice\n")
    commands = [[*name.split(), *(str(rows) if a == "ROWS" else a for a in args)]
                for name, args in WORKS_ON_THE_DATABASE.items()]
    for command in [*commands, ["bulk", "import", str(rows), "--subscription", "1", "--dry-run"]]:
        line = one_line(run(*command, "--data-dir", str(data)))
        assert line == f"teamsvoice: the database sqlite:///{data}/teamsvoice.sqlite3 is behind this teamsvoice's " \
                       f"migrations: apply them once with `teamsvoice migrate` (README, Upgrades)", (command, line)
        connection = sqlite3.connect(data / "teamsvoice.sqlite3")
        assert sorted(row[0] for row in connection.execute("SELECT version_num FROM alembic_version")) == revisions
        connection.close()
    with sqlite3.connect(data / "teamsvoice.sqlite3") as connection:
        connection.execute("INSERT INTO alembic_version VALUES ('9999_of_a_later_release')")
    connection.close()
    line = one_line(run("sbc", "status", "--data-dir", str(data)))
    assert "is at migration 9999_of_a_later_release, which this teamsvoice does not know" in line, line
    empty = tmp_path / "elsewhere.sqlite3"  # a database file, no teamsvoice tables in it
    sqlite3.connect(empty).close()
    line = one_line(run("drift", "--data-dir", str(data), env={"TEAMSVOICE_DATABASE_URL": f"sqlite:///{empty}"}))
    assert "has no teamsvoice tables: create them with `teamsvoice migrate`" in line, line


def test_doctor_reports_cloud_modes_missing_pwsh(tmp_path: Path) -> None:
    """Once a tenant was linked, `doctor` in cloud mode built the connector, which raised PwshUnavailable: a traceback,
    exit 1. It is a failed check of its own now (the tokens are checked all the same; nothing listens on port 9)."""
    linked_tenant(tmp_path)
    cloud = {"TEAMSVOICE_MICROSOFT_MODE": "cloud", "TEAMSVOICE_MICROSOFT_PWSH_PATH": str(tmp_path / "no-pwsh"),
             "TEAMSVOICE_MICROSOFT_CLIENT_ID": "app", "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "secret",
             "TEAMSVOICE_MICROSOFT_CERTIFICATE_THUMBPRINT": "AB12", "TEAMSVOICE_MICROSOFT_LOGIN_URL": UNREACHABLE}
    checked = run("doctor", "--data-dir", str(tmp_path), env=cloud)
    assert checked.exit_code == 1 and not isinstance(checked.exception, Exception), repr(checked.exception)
    assert f"[FAIL] teams powershell: PowerShell 7 ('{tmp_path / 'no-pwsh'}') was not found on PATH" in checked.stdout
    assert "[FAIL] tenant tenant-of-contoso (enterprise 1, Contoso): Microsoft Graph:" in checked.stdout, checked.stdout
    pwsh = tmp_path / "pwsh"  # (resolved, not run)
    pwsh.write_text("#!/bin/sh\n")
    pwsh.chmod(0o755)
    offline = run("doctor", "--offline", "--json", "--data-dir", str(tmp_path), env=cloud | {
        "TEAMSVOICE_MICROSOFT_PWSH_PATH": str(pwsh)})
    import json

    found = {c["check"]: c for c in json.loads(offline.stdout)["checks"]}
    assert found["teams powershell"]["status"] == "ok" and str(pwsh) in found["teams powershell"]["detail"]


def _jobs_to_hand_over(data: Path) -> dict[str, str]:
    """Beside `linked_tenant`'s customer, a Fusion subscription (1) and jobs of it: a bulk job that failed (retryable),
    one running (cancellable), a consent webhook delivery refused (retryable) and a Teams sync queued (cancellable)."""
    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.domain.calling.models import CallingJob
    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob

    engine = create_blocking_engine(f"sqlite:///{data}/teamsvoice.sqlite3")
    try:
        with sync_transaction(engine) as session:
            enterprise = session.get(Enterprise, 1)
            assert enterprise is not None
            tenant = FusionTenant(name="Contoso", owner_reseller_id=enterprise.reseller_id)
            session.add(tenant)
            session.flush()
            subscription = FusionSubscription(fusion_tenant_id=tenant.id, name="Teams", enterprise_id=enterprise.id)
            session.add(subscription)
            session.flush()
            failed = FusionBulkJob(subscription_id=subscription.id, title="failed", job_id="1", total_count=1,
                                   status="error", error_count=1)
            running = FusionBulkJob(subscription_id=subscription.id, title="running", job_id="2", total_count=1,
                                    status="running")
            webhook = WebhookDelivery(enterprise_id=enterprise.id, url="https://hooks.example/consent",
                                      payload_encrypted="sealed", status="refused", attempts=1, last_error="HTTP 302")
            sync = CallingJob(enterprise_id=enterprise.id, kind="SYNC_TEAMS_USERS", status="QUEUED")
            session.add_all([failed, running, webhook, sync])
            session.flush()
            session.add_all([FusionBulkItem(job_id=failed.id, position=0, upn="ada@contoso.example", data={},
                                            status="error", attempts=1,
                                            error={"kind": "validation", "code": "x", "message": "no"}),
                             FusionBulkItem(job_id=running.id, position=0, upn="bob@contoso.example", data={})])
            session.flush()
            return {"failed": str(failed.id), "running": str(running.id), "webhook": f"webhook:{webhook.id}",
                    "sync": f"sync:{sync.id}"}
    finally:
        engine.dispose()


CLOUD_WITHOUT_PWSH = {"TEAMSVOICE_MICROSOFT_MODE": "cloud", "TEAMSVOICE_MICROSOFT_CLIENT_ID": "app",
                      "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "secret",
                      "TEAMSVOICE_MICROSOFT_CERTIFICATE_THUMBPRINT": "AB12",
                      "TEAMSVOICE_MICROSOFT_LOGIN_URL": UNREACHABLE, "TEAMSVOICE_SECRET_KEY": "the-servers-key"}


def _process(data: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The command in a process of its own, as an operator types it: commands that hand work over start the job
    engine (one per process; the suite's live server may hold this process's)."""
    import os
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_")} | env
    environment["PYTHONUNBUFFERED"] = "1"  # (its first line read as soon as it is said)
    return subprocess.Popen([sys.executable, "-m", "teamsvoice", *args, "--data-dir", str(data)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _enqueued(data: Path) -> set[str]:
    """The workflows waiting in the job engine's queues for a worker (DBOS's table, in the data directory)."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(data / "teamsvoice-jobs.sqlite3")) as connection:
        waiting = connection.execute("SELECT workflow_uuid FROM workflow_status WHERE status = 'ENQUEUED'")
        return {row[0] for row in waiting}


def test_work_is_handed_to_the_job_engine_without_teams_powershell(tmp_path: Path) -> None:
    """Cloud mode on an admin host without pwsh: `bulk import`, `jobs retry` and `jobs cancel` refused ("... was not
    found on PATH ... starts the job engine here to hand its work over"), as the job engine they start built its
    Microsoft connector, which resolves pwsh, though it only enqueues. Its `api` role builds none now: they record
    their work and hand it over (the workflows wait in the job engine's queues for a worker). `apply`, which asks
    Microsoft itself (the tenant's plan), still says what it lacks, one line, recording nothing."""
    import os
    import signal

    linked_tenant(tmp_path)
    jobs = _jobs_to_hand_over(tmp_path)
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,vrp\nada@contoso.example,teamsvoice\n")
    cloud = CLOUD_WITHOUT_PWSH | {"TEAMSVOICE_MICROSOFT_PWSH_PATH": str(tmp_path / "no-pwsh")}

    retried = _process(tmp_path, "jobs", "retry", jobs["failed"], env=cloud)
    out, err = retried.communicate(timeout=120)
    assert retried.returncode == 0, err
    assert out.strip().startswith(f"job {jobs['failed']}: 1 item(s) queued again"), out
    cancelled = _process(tmp_path, "jobs", "cancel", jobs["sync"], env=cloud)
    out, err = cancelled.communicate(timeout=120)
    assert cancelled.returncode == 0 and out.strip() == f"{jobs['sync']} cancelled (0/0 had finished)", (out, err)
    before = _listed(tmp_path)
    assert before == {f"bulk:{jobs['failed']}": "queued", f"bulk:{jobs['running']}": "running",
                      jobs["webhook"]: "refused", jobs["sync"]: "cancelled"}
    assert len(_enqueued(tmp_path)) == 1, _enqueued(tmp_path)  # the retried bulk job's workflow, for a worker

    imported = _process(tmp_path, "bulk", "import", str(rows), "--subscription", "1", env=cloud)
    try:
        assert imported.stdout is not None
        line = imported.stdout.readline()  # (said once enqueued; then it follows the job, which no worker runs here)
        assert line.startswith("bulk job ") and "queued (1 users)" in line, line
        assert len(_enqueued(tmp_path)) == 2, _enqueued(tmp_path)
    finally:
        os.kill(imported.pid, signal.SIGKILL)
        imported.communicate()
    assert _listed(tmp_path) == before | {f"bulk:{int(line.split()[2])}": "queued"}

    before = _listed(tmp_path)
    line = one_line(run("apply", "tenant-of-contoso", "--data-dir", str(tmp_path), env=cloud))
    assert line.startswith(f"teamsvoice: PowerShell 7 ('{tmp_path / 'no-pwsh'}') was not found on PATH"), line
    assert _listed(tmp_path) == before  # no apply job recorded
    checked = run("bulk", "import", str(rows), "--subscription", "1", "--dry-run", "--data-dir", str(tmp_path), env=cloud)
    assert checked.exit_code == 0 and "1 of 1 rows are valid" in checked.stdout, checked.output
    drift = run("drift", "--data-dir", str(tmp_path), env=cloud)
    assert drift.exit_code == 0 and drift.stdout.strip() == "No open drift.", drift.output
    cancelled_bulk = run("jobs", "cancel", jobs["running"], "--data-dir", str(tmp_path), env=cloud)
    assert cancelled_bulk.exit_code == 0, cancelled_bulk.output
    assert cancelled_bulk.stdout.strip() == f"bulk:{jobs['running']} cancelled (0/1 had finished)"
    assert _listed(tmp_path)[f"bulk:{jobs['running']}"] == "cancelled"
    assert not (tmp_path / "secret.key").exists()


def _pbx_user_sealed_with(data: Path, secret_key: str) -> None:
    """Beside `linked_tenant`'s customer, a PBX location and user whose SIP password is sealed with `secret_key`."""
    from teamsvoice.core.db import create_blocking_engine, sync_transaction
    from teamsvoice.core.security import Keyring, load_or_create_master_key
    from teamsvoice.domain.calling.models import PbxLocation, PbxUser
    from teamsvoice.domain.calling.pbx import SIP_PASSWORD_PURPOSE
    from teamsvoice.domain.orgs.models import PbxType

    sealed = Keyring(load_or_create_master_key(secret_key, data)).encrypt("sip-secret", purpose=SIP_PASSWORD_PURPOSE)
    engine = create_blocking_engine(f"sqlite:///{data}/teamsvoice.sqlite3")
    try:
        with sync_transaction(engine) as session:
            pbx_type = PbxType(reseller_id=1, pbx_name="Asterisk", pbx_label="Asterisk")
            session.add(pbx_type)
            session.flush()
            location = PbxLocation(enterprise_id=1, pbx_type_id=pbx_type.id, pbx_location="HQ", pbx_label="HQ",
                                   canonical_pbx_sip_domain="pbx.contoso.example")
            session.add(location)
            session.flush()
            session.add(PbxUser(enterprise_id=1, kind="PBX", teams_user_id="ada@contoso.example", microsoft_user_id="ada",
                                pbx_location_id=location.id, phone_number="+3222000001", pbx_user_id="201",
                                pbx_auth_user_id="201", sip_password_encrypted=sealed))
    finally:
        engine.dispose()


def test_sbc_status_says_in_one_line_what_gave_it_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sbc status` ran outside `run_command`: a database that gave it up (a deadlock lost) and a secret key that is
    not the server's (the SIP passwords it reads for the SBC's desired state do not decrypt) were tracebacks, exit 1."""
    import json

    from sqlalchemy.exc import OperationalError

    from teamsvoice.core.db import DATABASE_BUSY
    from teamsvoice.domain.sbc import service

    linked_tenant(tmp_path)
    _pbx_user_sealed_with(tmp_path, "the-servers-key")
    sbc = {"TEAMSVOICE_SBC_KAMAILIO_DB_URL": f"sqlite:///{tmp_path}/kamailio.sqlite3",
           "TEAMSVOICE_SBC_KAMAILIO_RPC_URL": "http://127.0.0.1:9/RPC"}
    line = one_line(run("sbc", "status", "--data-dir", str(tmp_path), env=sbc | {"TEAMSVOICE_SECRET_KEY": "another-key"}))
    assert line == "teamsvoice: the stored SIP passwords do not decrypt with this secret key: run it with the server's " \
                   "TEAMSVOICE_SECRET_KEY (or, when the server has none, its --data-dir, whose secret.key it uses)", line
    unreachable = run("sbc", "status", "--json", "--data-dir", str(tmp_path),
                      env=sbc | {"TEAMSVOICE_SECRET_KEY": "the-servers-key"})
    assert unreachable.exit_code == 1, unreachable.output  # the SBC does not answer (nothing listens on port 9)
    assert [(u["teamsUserId"], u["registration"]) for u in json.loads(unreachable.stdout)["users"]] == \
        [("ada@contoso.example", "UNKNOWN")]

    def deadlocked(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT pbx_users...", {}, Exception("deadlock detected"))

    monkeypatch.setattr(service, "user_rows", deadlocked)
    key = {"TEAMSVOICE_SECRET_KEY": "the-servers-key"}
    assert one_line(run("sbc", "status", "--data-dir", str(tmp_path), env=key)) == f"teamsvoice: {DATABASE_BUSY}"


def _listed(data: Path) -> dict[str, str]:
    """Every job `jobs list` shows, by its ref: its status."""
    import json

    shown = run("jobs", "list", "--json", "--data-dir", str(data))
    assert shown.exit_code == 0, shown.output
    return {job["ref"]: job["status"] for job in json.loads(shown.stdout)}


def test_operator_commands_create_no_secret_key(tmp_path: Path) -> None:
    """An admin host of a PostgreSQL deployment has a data directory but no secret.key: the servers' key is given by
    TEAMSVOICE_SECRET_KEY (or kept on their hosts). `sbc status` and the commands that start the job engine to hand
    work over (`jobs retry`, `jobs cancel`, `bulk import`, `apply`) wrote a new key there, one the servers do not use.
    They refuse in one line now, exit 2, naming where the key is expected and the setting, before they record
    anything, and create no key; given the server's key, they work."""
    linked_tenant(tmp_path)
    jobs = _jobs_to_hand_over(tmp_path)
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,vrp\nada@contoso.example,teamsvoice\n")
    key = tmp_path / "secret.key"
    assert not key.exists()  # (`migrate` makes none: only the servers do, at their first start)
    microsoft = {"TEAMSVOICE_MICROSOFT_CLIENT_ID": "app", "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "secret",
                 "TEAMSVOICE_MICROSOFT_LOGIN_URL": UNREACHABLE, "TEAMSVOICE_MICROSOFT_GRAPH_URL": f"{UNREACHABLE}/v1.0",
                 "TEAMSVOICE_MICROSOFT_POWERSHELL_URL": f"{UNREACHABLE}/_powershell/invoke"}
    before = _listed(tmp_path)
    for command in (["sbc", "status"], ["jobs", "retry", jobs["failed"]], ["jobs", "retry", jobs["webhook"]],
                    ["jobs", "cancel", jobs["sync"]], ["bulk", "import", str(rows), "--subscription", "1"],
                    ["apply", "tenant-of-contoso"]):
        line = one_line(run(*command, "--data-dir", str(tmp_path), env=microsoft))
        assert line == f"teamsvoice: no secret key: TEAMSVOICE_SECRET_KEY is not set and {key} does not exist; " \
                       f"run it with the server's TEAMSVOICE_SECRET_KEY (or, when the server has none, its " \
                       f"--data-dir, whose secret.key it uses)", (command, line)
        assert not key.exists(), command
        assert _listed(tmp_path) == before, command  # nothing recorded: no job retried, cancelled or new
    reported = run("sbc", "status", "--data-dir", str(tmp_path), env={"TEAMSVOICE_SECRET_KEY": "the-servers-key"})
    assert reported.exit_code == 0 and "No PBX users." in reported.stdout, reported.output
    assert not key.exists()
    key.mkdir()  # (a key that cannot be read is one line too)
    assert one_line(run("sbc", "status", "--data-dir", str(tmp_path))) == \
        f"teamsvoice: cannot read the secret key {key}: Is a directory"


def test_bulk_import_checks_its_name_with_dry_run_too(tmp_path: Path) -> None:
    """`bulk import --dry-run --name ''` said the rows were valid, exit 0: only the real run refused the name (when
    it recorded the job). Both refuse it now, in one line, before anything runs."""
    linked_tenant(tmp_path)
    _jobs_to_hand_over(tmp_path)  # (subscription 1)
    rows = tmp_path / "rows.csv"
    rows.write_text("upn,vrp\nada@contoso.example,teamsvoice\n")
    before = _listed(tmp_path)
    required = "a bulk job descriptive name is required"
    for name, problem in (("", required), ("  ", required), ("x" * 201, "at most 200 characters"),
                          ("a\x01b", "must not contain NUL or other control characters")):
        for dry_run in (["--dry-run"], []):
            line = one_line(run("bulk", "import", str(rows), "--subscription", "1", "--name", name, *dry_run,
                                "--data-dir", str(tmp_path), env={"TEAMSVOICE_SECRET_KEY": "the-servers-key"}))
            assert line == f"teamsvoice: --name: {problem}", (name, dry_run, line)
    assert _listed(tmp_path) == before
    checked = run("bulk", "import", str(rows), "--subscription", "1", "--name", " " + "x" * 200 + " ", "--dry-run",
                  "--data-dir", str(tmp_path))
    assert checked.exit_code == 0 and "1 of 1 rows are valid" in checked.stdout, checked.output  # (stripped, as stored)


def test_commands_that_ask_microsoft_say_there_is_none_to_ask(tmp_path: Path) -> None:
    """Emulator mode, no app registration set, and no `serve` ever started in the data directory (it records its
    emulator's address and app registration there): `plan`, `apply` and `users export` said "Teams PowerShell is not
    configured (TEAMSVOICE_MICROSOFT_POWERSHELL_URL)", one setting of six, and `drift --scan` reported that as every
    tenant's failed scan, exit 1. They say what to do in one line now; `drift` without --scan asks Microsoft nothing."""
    linked_tenant(tmp_path)
    for command in (["plan", "tenant-of-contoso"], ["apply", "tenant-of-contoso"], ["drift", "--scan"],
                    ["users", "export", "--tenant", "tenant-of-contoso"]):
        line = one_line(run(*command, "--data-dir", str(tmp_path)))
        assert line == "teamsvoice: no Microsoft to ask: `teamsvoice serve` has not recorded its Microsoft 365 emulator " \
                       "in this data directory (start it there), and no app registration is set (TEAMSVOICE_MICROSOFT_" \
                       "LOGIN_URL, _GRAPH_URL, _POWERSHELL_URL, _CA_BUNDLE, _CLIENT_ID and _CLIENT_SECRET, as the " \
                       "server has them)", (command, line)
    listed = run("drift", "--data-dir", str(tmp_path))
    assert listed.exit_code == 0 and listed.stdout.strip() == "No open drift.", listed.output
