"""`teamsvoice backup` / `restore` of the embedded default (SQLite in the data directory): an online copy
while a server holds the directory, restore refused while one does, refused for files that are not a
teamsvoice backup or whose database is at a migration this release does not know, and a clear refusal on
PostgreSQL. `doctor` on a data directory without a database. No server needed: SQLite files only."""

import io
import json
import sqlite3
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from teamsvoice.cli import app
from teamsvoice.core.security import load_or_create_master_key
from teamsvoice.runner import DataDirLock

NO_DATABASE_URL = {"TEAMSVOICE_DATABASE_URL": None, "TEAMSVOICE_SECRET_KEY": None}


def run(*args: str, env: dict | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=NO_DATABASE_URL | (env or {}))


def executors(data: Path) -> list[str]:
    connection = sqlite3.connect(data / "teamsvoice.sqlite3")
    try:
        return [row[0] for row in connection.execute("SELECT executor_id FROM job_executors ORDER BY executor_id")]
    finally:
        connection.close()


def add_executor(path: Path, name: str) -> None:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("INSERT INTO job_executors (executor_id, hostname, pid, role, started_at, heartbeat_at, stopped) "
                           "VALUES (?, 'h', 1, 'all', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)", (name,))
    connection.close()


def test_backup_while_in_use_and_restore(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = run("doctor", "--data-dir", str(data), "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["checks"][0]["status"] == "failed"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    fresh = json.loads(run("doctor", "--data-dir", str(data), "--json", "--offline").stdout)
    by_name = {c["check"]: c for c in fresh["checks"]}
    assert by_name["database"]["status"] == by_name["migrations"]["status"] == "ok"
    assert by_name["job executors"]["status"] == "failed" and "teamsvoice serve" in by_name["job executors"]["fix"]
    key = load_or_create_master_key(None, data)
    (data / "teamsvoice-jobs.sqlite3").write_bytes(b"")  # the job engine's database, empty but present
    add_executor(data / "teamsvoice.sqlite3", "before-backup")

    server = DataDirLock(data)
    server.acquire("teamsvoice serve on 127.0.0.1:8080")  # as a running server holds it
    writer = sqlite3.connect(data / "teamsvoice.sqlite3")
    writer.execute("BEGIN IMMEDIATE")  # and a server's write in progress, not committed
    writer.execute("INSERT INTO job_executors (executor_id, hostname, pid, role, started_at, heartbeat_at, stopped) "
                   "VALUES ('uncommitted', 'h', 1, 'all', '2026-01-01', '2026-01-01', 1)")
    archive = tmp_path / "backup.tar"
    made = run("backup", str(archive), "--data-dir", str(data), "--json")
    writer.rollback()
    writer.close()
    assert made.exit_code == 0, made.stdout + made.stderr
    manifest = json.loads(made.stdout)
    assert manifest["format"] == "teamsvoice-backup" and manifest["secretKey"] == "file" and manifest["revisions"]
    assert archive.stat().st_mode & 0o077 == 0  # holds the secret key: owner only
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["manifest.json", "secret.key", "teamsvoice-jobs.sqlite3", "teamsvoice.sqlite3"]

    add_executor(data / "teamsvoice.sqlite3", "after-backup")
    refused = run("restore", str(archive), "--data-dir", str(data))
    assert refused.exit_code == 2 and "in use by teamsvoice serve on 127.0.0.1:8080" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    server.release()

    (data / "secret.key").write_text("replaced")
    restored = run("restore", str(archive), "--data-dir", str(data), "--json")
    assert restored.exit_code == 0, restored.stdout + restored.stderr
    report = json.loads(restored.stdout)
    assert report["atHead"] and sorted(report["restored"]) == ["secret.key", "teamsvoice-jobs.sqlite3", "teamsvoice.sqlite3"]
    assert executors(data) == ["before-backup"]  # neither the later row nor the uncommitted one
    assert load_or_create_master_key(None, data) == key
    assert (data / "secret.key").stat().st_mode & 0o077 == 0
    assert any(p.name.startswith("teamsvoice.sqlite3.before-restore-") for p in data.iterdir())  # the replaced file is kept


def test_restore_refuses_what_is_not_a_compatible_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    add_executor(data / "teamsvoice.sqlite3", "current")

    junk = tmp_path / "junk.tar"
    junk.write_text("not an archive")
    refused = run("restore", str(junk), "--data-dir", str(data))
    assert refused.exit_code == 2 and refused.stderr.strip() == f"teamsvoice: {junk} is not a teamsvoice backup: not a tar archive"

    def archive(name: str, manifest: dict | list | None, database: Path | None) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w") as tar:
            if manifest is not None:
                body = json.dumps(manifest).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
            if database is not None:
                tar.add(database, arcname="teamsvoice.sqlite3")
        return path

    assert "no manifest.json" in run("restore", str(archive("bare.tar", None, None)), "--data-dir", str(data)).stderr
    # A container image's archive (`docker save`) has a manifest.json too, a list: it was an AttributeError traceback.
    image = run("restore", str(archive("image.tar", [{"Config": "c.json"}], None)), "--data-dir", str(data))
    assert image.exit_code == 2 and image.stderr.strip() == \
        f"teamsvoice: {tmp_path / 'image.tar'} is not a teamsvoice backup: its manifest is not a teamsvoice backup's"
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.close()
    foreign = run("restore", str(archive("foreign.tar", {"format": "teamsvoice-backup"}, other)), "--data-dir", str(data))
    assert foreign.exit_code == 2 and "no teamsvoice tables" in foreign.stderr

    newer = tmp_path / "newer.sqlite3"
    newer.write_bytes((data / "teamsvoice.sqlite3").read_bytes())
    connection = sqlite3.connect(newer)
    with connection:
        connection.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    connection.close()
    future = run("restore", str(archive("future.tar", {"format": "teamsvoice-backup"}, newer)), "--data-dir", str(data))
    assert future.exit_code == 2 and "9999_from_the_future" in future.stderr and "does not know" in future.stderr
    assert executors(data) == ["current"]  # nothing was replaced


def test_backup_and_restore_refuse_on_postgresql(tmp_path: Path) -> None:
    env = {"TEAMSVOICE_DATABASE_URL": "postgresql://teamsvoice:secret@127.0.0.1:1/teamsvoice"}
    made = run("backup", str(tmp_path / "b.tar"), "--data-dir", str(tmp_path), env=env)
    assert made.exit_code == 2 and "pg_dump" in made.stderr and "secret" not in made.stderr
    restored = run("restore", str(tmp_path / "b.tar"), "--data-dir", str(tmp_path), env=env)
    assert restored.exit_code == 2 and "pg_restore" in restored.stderr
    assert not (tmp_path / "b.tar").exists()


def test_doctor_names_a_database_behind_its_migrations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    connection = sqlite3.connect(data / "teamsvoice.sqlite3")
    with connection:
        connection.execute("DELETE FROM alembic_version WHERE version_num = (SELECT MAX(version_num) FROM alembic_version)")
    connection.close()
    ran = run("doctor", "--data-dir", str(data))
    assert ran.exit_code == 1
    assert "[FAIL] migrations: behind: 1 branch head(s) not applied" in ran.stdout
    assert "fix: run `teamsvoice migrate`" in ran.stdout and "[skip] job engine" in ran.stdout


def test_a_backup_carries_what_serve_needs_to_start_from_it(tmp_path: Path) -> None:
    """A backup restored into an empty directory did not start: it held no demo credentials (`serve` refused) nor
    the app registration, nor the Microsoft 365 emulator's tenants the customers are linked to. They are in it."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    assert run("migrate", "--data-dir", str(data)).exit_code == 0
    (data / "demo-credentials.json").write_text('{"apiUrl": "http://127.0.0.1:8080"}')
    (data / "microsoft-app.json").write_text('{"clientId": "c", "clientSecret": "s"}')
    emulator = data / "m365-emulator"
    emulator.mkdir()
    (emulator / "emulator-ca.pem").write_text("CA")
    tenants = sqlite3.connect(emulator / "m365-emulator.sqlite3")
    with tenants:
        tenants.execute("CREATE TABLE tenants (domain TEXT)")
        tenants.execute("INSERT INTO tenants VALUES ('contoso.example')")
    tenants.close()
    archive = tmp_path / "backup.tar"
    made = run("backup", str(archive), "--data-dir", str(data), "--json")
    assert made.exit_code == 0, made.stdout + made.stderr
    assert json.loads(made.stdout)["sideFiles"] == ["demo-credentials.json", "m365-emulator/emulator-ca.pem",
                                                    "m365-emulator/m365-emulator.sqlite3", "microsoft-app.json"]
    restored = run("restore", str(archive), "--data-dir", str(elsewhere), "--json")
    assert restored.exit_code == 0, restored.stdout + restored.stderr
    assert (elsewhere / "demo-credentials.json").read_text() == '{"apiUrl": "http://127.0.0.1:8080"}'
    assert (elsewhere / "microsoft-app.json").stat().st_mode & 0o077 == 0
    assert (elsewhere / "m365-emulator" / "emulator-ca.pem").read_text() == "CA"
    copy = sqlite3.connect(elsewhere / "m365-emulator" / "m365-emulator.sqlite3")
    try:
        assert copy.execute("SELECT domain FROM tenants").fetchall() == [("contoso.example",)]
    finally:
        copy.close()


def test_readme_says_what_a_backup_holds() -> None:
    """README's Backups section said a backup held both databases and `secret.key`, not the emulator's directory,
    while `backup` archives the emulator's directory and the side files too (as its command table said)."""
    from teamsvoice import operator_cli

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n### Backups\n", 1)[1].split("\n#", 1)[0]
    said = " ".join(section.split("`teamsvoice backup FILE`", 1)[1].split("\n2. ", 1)[0].split())
    for name in (operator_cli.DATABASE_FILE, operator_cli.JOBS_FILE, operator_cli.KEY_FILE, *operator_cli.SIDE_FILES,
                 f"{operator_cli.EMULATOR_DIR}/"):
        assert f"`{name}`" in said or name.endswith(".sqlite3") and "both databases" in said, (name, said)
    assert "not included" not in said, said
