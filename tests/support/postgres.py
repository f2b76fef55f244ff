"""A throwaway PostgreSQL server built from the machine's binaries (initdb, pg_ctl), on loopback."""

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in PG_BIN_CANDIDATES:
        if (directory / name).exists():
            return str(directory / name)
    raise RuntimeError(f"PostgreSQL binary '{name}' not found: install postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, settings: tuple[str, ...] = ()) -> None:
        """`settings`: more server settings, each `name=value` (a bench's `shared_preload_libraries=...`)."""
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="teamsvoice-pg-"))
        self.port = free_port()
        # initdb refuses to run as root: run the server as the postgres system user then.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self._as_user:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        for attempt in range(5):
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c synchronous_commit=off "
                       "-c max_connections=200")
            options += "".join(f" -c {shlex.quote(setting)}" for setting in self.settings)
            try:
                self._run(_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
                break
            except subprocess.CalledProcessError:
                # The port free_port found was taken before the server bound it (another test process's server,
                # or a connection's local port, on a loaded machine): every test of the process failed in setup.
                log = (self.root / "log").read_text(errors="replace") if (self.root / "log").exists() else ""
                if "could not bind" not in log and "already in use" not in log or attempt == 4:
                    raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {log[-2000:]}") from None
                self.port = free_port()
        # The server outlives a test process that ends without its teardown (an xdist worker killed when the run
        # is interrupted): a watchdog holding a pipe from this process stops it once the pipe closes, however
        # this process ends.
        stop = " ".join(shlex.quote(a) for a in [*self._as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        self._watchdog = subprocess.Popen(["sh", "-c", f"read _; {stop} >/dev/null 2>&1; rm -rf {shlex.quote(str(self.root))}"],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)

    def create_database(self, name: str) -> str:
        self._run(_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._watchdog.kill()
        self._watchdog.wait()
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


async def end_sessions(database_url: str, pid: int | None = None) -> int:
    """The server ends one session (`pid`), or every session on the database but this one, as a restart or a
    failover would; answers how many it ended."""
    from sqlalchemy import text

    from teamsvoice.core.db import create_engine

    which = "pid = :pid" if pid is not None else "datname = current_database() AND pid <> pg_backend_pid()"
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(
                f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {which}"), {"pid": pid})).scalar_one())
    finally:
        await engine.dispose()
