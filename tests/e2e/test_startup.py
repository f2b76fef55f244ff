"""A start that cannot work says why in one line and exits 2, creating nothing."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.postgres import free_port


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_")}
    return subprocess.run([sys.executable, "-m", "teamsvoice", *args], env=base | (env or {}), capture_output=True,
                          text=True, timeout=timeout)


def _ports() -> tuple[str, ...]:
    """Free ports for the API and the emulator (the emulator's default, API port + 1, may be taken)."""
    return ("--port", str(free_port()), "--emulator-port", str(free_port()))


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_busy_port_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = _one_line(_run("serve", "--port", str(port), "--data-dir", str(tmp_path / "data")))
    assert f"127.0.0.1:{port}" in line and "in use" in line
    assert not (tmp_path / "data").exists()
    with socket.socket() as holder:  # the emulator's port is checked before anything is made, too
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        line = _one_line(_run("serve", "--port", str(free_port()), "--emulator-port", str(busy), "--data-dir", str(tmp_path / "data")))
    assert "emulator" in line and str(busy) in line and not (tmp_path / "data").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    readonly = tmp_path / "ro"
    readonly.mkdir(mode=0o500)
    line = _one_line(_run("serve", *_ports(), "--data-dir", str(readonly / "data")))
    assert str(readonly / "data") in line and "not writable" in line


def test_an_unwritable_data_dir_is_named_even_for_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = _one_line(_run("serve", *_ports(), "--data-dir", str(blocker / "data")))
    assert str(blocker / "data") in line and "not writable" in line


def test_a_second_serve_on_the_same_data_dir_says_who_holds_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A holder of the lock, as a running `serve` holds it.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from teamsvoice.runner import DataDirLock;"
        f"lock = DataDirLock(Path({str(data_dir)!r})); lock.acquire('teamsvoice serve on 127.0.0.1:1234'); print('held', flush=True);"
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        line = _one_line(_run("serve", *_ports(), "--data-dir", str(data_dir)))
        assert "in use by teamsvoice serve on 127.0.0.1:1234" in line and f"pid {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in data_dir.iterdir()) == [".teamsvoice.lock"]


def test_an_unreachable_or_wrong_database_is_named(tmp_path: Path) -> None:
    dead = f"postgresql://teamsvoice:secret-pw@127.0.0.1:{free_port()}/tv"
    started = time.monotonic()
    line = _one_line(_run("serve", *_ports(), "--data-dir", str(tmp_path / "data"),
                          env={"TEAMSVOICE_DATABASE_URL": dead}))
    assert "cannot reach the database" in line and "TEAMSVOICE_DATABASE_URL" in line and "secret-pw" not in line
    assert time.monotonic() - started < 30
    line = _one_line(_run("migrate", "--data-dir", str(tmp_path / "data"), env={"TEAMSVOICE_DATABASE_URL": "mysql://x/y"}))
    assert "not supported" in line
    line = _one_line(_run("worker", "--data-dir", str(tmp_path / "data")))
    assert "PostgreSQL" in line and "teamsvoice serve" in line
    line = _one_line(_run("serve", "--data-dir", str(tmp_path / "data"), env={"TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY": "lots"}))
    assert "TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY" in line


def test_a_port_out_of_range_is_named(tmp_path: Path) -> None:
    """An OverflowError's traceback (exit 1) before."""
    data = tmp_path / "data"
    for args, named in ((["serve", "--port", "99999"], "API port 99999"), (["serve", "--port", "-1"], "API port -1"),
                        (["serve", "--port", str(free_port()), "--emulator-port", "70000"], "emulator port 70000"),
                        (["emulator", "--port", "99999"], "emulator port 99999")):
        line = _one_line(_run(*args, "--data-dir", str(data)))
        assert named in line and "from 1 to 65535" in line, line
    assert not data.exists()


def test_a_database_with_data_and_no_demo_credentials_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """`serve` refused such a directory (a database restored alone) only after it had made the emulator's directory
    and the app registration in it."""
    data = tmp_path / "data"
    assert _run("migrate", "--data-dir", str(data)).returncode == 0
    import sqlite3
    connection = sqlite3.connect(data / "teamsvoice.sqlite3")
    with connection:
        connection.execute("INSERT INTO resellers (id, name, level, registered_redirect_urls, created_at) "
                           "VALUES (1, 'r', 'MASTER', '[]', '2026-01-01 00:00:00')")
    connection.close()
    before = sorted(p.name for p in data.iterdir())
    line = _one_line(_run("serve", *_ports(), "--data-dir", str(data)))
    assert "demo-credentials.json is missing" in line and "teamsvoice restore" in line, line
    assert sorted(p.name for p in data.iterdir() if p.name != ".teamsvoice.lock") == [n for n in before if n != ".teamsvoice.lock"]


def test_cloud_mode_without_pwsh_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    """The connector found pwsh missing only once `serve` had bound its port, migrated and seeded (a traceback, exit 1,
    which systemd restarts), a worker in its job engine's start. Checked first now, with the settings."""
    data, missing = tmp_path / "data", tmp_path / "no-pwsh"
    cloud = {"TEAMSVOICE_MICROSOFT_MODE": "cloud", "TEAMSVOICE_MICROSOFT_PWSH_PATH": str(missing),
             "TEAMSVOICE_MICROSOFT_CLIENT_ID": "app", "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": "secret",
             "TEAMSVOICE_MICROSOFT_CERTIFICATE_THUMBPRINT": "AB12"}
    said = f"teamsvoice: TEAMSVOICE_MICROSOFT_MODE=cloud: PowerShell 7 ('{missing}') was not found on PATH"
    line = _one_line(_run("serve", *_ports(), "--data-dir", str(data), env=cloud))
    assert line.startswith(said) and "TEAMSVOICE_MICROSOFT_PWSH_PATH" in line, line
    # (the database named does not answer: had the worker gone past the check, it would say that)
    line = _one_line(_run("worker", "--data-dir", str(data), env=cloud | {
        "TEAMSVOICE_DATABASE_URL": f"postgresql://tv:pw@127.0.0.1:{free_port()}/tv"}))
    assert line.startswith(said), line
    assert not data.exists()
