"""Running teamsvoice processes: checks before anything is created, the data directory lock, and a clean
stop on SIGINT/SIGTERM.

Order at start: check the settings (cloud mode's Teams PowerShell too), bind the ports, check the data
directory and the database, take the lock; only then create files, migrate and seed. A problem is one
`StartupError` line naming it and its fix (exit 2).
Order at stop: the API stops accepting and finishes its requests, the job engine stops (in-flight
Microsoft calls get a few seconds; unfinished items stay pending), then the emulator. The process then
exits at once: threads still parked in job steps hold nothing that is not already committed.
"""

import asyncio
import contextlib
import errno
import fcntl
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import h11
import uvicorn
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from h11._receivebuffer import ReceiveBuffer
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

if TYPE_CHECKING:
    from teamsvoice.settings import Settings

LOCK_FILE = ".teamsvoice.lock"


class StartupError(Exception):
    """Something outside teamsvoice prevents the start; the message names it and the fix."""


def bind(host: str, port: int, what: str) -> socket.socket:
    if not 0 < port <= 65535:  # (the socket raised OverflowError: a traceback)
        raise StartupError(f"{what} port {port} is not a TCP port: choose one from 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"{what} port {host}:{port} is already in use: stop what holds it or choose another "
                               f"port") from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise StartupError(f"{what} port {host}:{port} needs privileges: choose a port above 1023") from None
        raise StartupError(f"cannot listen on {host}:{port} for the {what}: {exc.strerror}") from None
    return sock


def check_data_dir(path: Path) -> None:
    """The directory exists (or can be made) and is writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"data directory {path} is not writable ({exc.strerror}): fix its permissions or pass "
                           f"--data-dir with a writable directory") from None


class DataDirLock:
    """An exclusive lock on the data directory, held for the process's life (released by the kernel if
    the process dies). Its file names the holder so a second start can say who it is."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: TextIO | None = None

    def acquire(self, description: str) -> None:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StartupError(f"data directory {self.path.parent} is in use by {holder}: stop it first, or pass "
                               f"another --data-dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{description} (pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def check_database(url: str) -> None:
    """The database URL is one we support and the server answers (within a few seconds)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from teamsvoice.core.db import sync_url

    if not url.startswith(("sqlite:///", "postgresql:", "postgres:", "postgresql+psycopg:")):
        raise StartupError(f"TEAMSVOICE_DATABASE_URL {redact_url(url)!r} is not supported: use sqlite:///PATH or "
                           f"postgresql://USER:PASSWORD@HOST:PORT/DB")
    if url.startswith("sqlite:///"):
        return
    try:
        engine = create_engine(sync_url(url), connect_args={"connect_timeout": 5})
    except (ArgumentError, ValueError) as exc:
        raise StartupError(f"TEAMSVOICE_DATABASE_URL {redact_url(url)!r} is malformed: {exc}") from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StartupError(f"cannot reach the database {redact_url(url)}: {reason}; check TEAMSVOICE_DATABASE_URL "
                           f"and that PostgreSQL is running") from None
    finally:
        engine.dispose()


def check_microsoft(settings: "Settings") -> None:
    """Cloud mode's Teams PowerShell: pwsh, the app id and a certificate (`PwshConfig.of_settings`, as the connector
    resolves them). Checked first: the connector found one missing only once the process had bound its port, migrated
    and seeded (a traceback, exit 1; a worker's in its job engine's start)."""
    if settings.microsoft_mode != "cloud":
        return
    from teamsvoice.microsoft.pwsh import PwshConfig, PwshUnavailable

    try:
        PwshConfig.of_settings(settings)
    except PwshUnavailable as exc:
        raise StartupError(f"TEAMSVOICE_MICROSOFT_MODE=cloud: {exc.message}") from None


def check_migrated(url: str) -> None:
    """The database is at this release's migrations, every branch head applied and none it does not know. For the
    commands that need them and do not migrate: only `teamsvoice migrate` and the servers do (README, Upgrades), so
    that a new release's CLI run against production before its `migrate` does not migrate it early."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from teamsvoice.core.db import DATABASE_BUSY, MIGRATIONS_DIR, create_blocking_engine, is_transient_database_error

    where = redact_url(url)
    engine = create_blocking_engine(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        if is_transient_database_error(exc):
            raise StartupError(DATABASE_BUSY) from None
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StartupError(f"cannot read the migrations of the database {where}: {reason}") from None
    finally:
        engine.dispose()
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    heads = set(script.get_heads())
    if current == heads:
        return
    unknown = sorted(current - {revision.revision for revision in script.walk_revisions()})
    if unknown:
        raise StartupError(f"the database {where} is at migration {', '.join(unknown)}, which this teamsvoice does not "
                           f"know: use the release that migrated it (or a newer one)")
    if not current:
        raise StartupError(f"the database {where} has no teamsvoice tables: create them with `teamsvoice migrate` "
                           f"(with the server's --data-dir and TEAMSVOICE_DATABASE_URL)")
    raise StartupError(f"the database {where} is behind this teamsvoice's migrations: apply them once with "
                       f"`teamsvoice migrate` (README, Upgrades)")


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else url


class Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process decides the order things stop in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def quiet_signals(server_: uvicorn.Server) -> uvicorn.Server:
    """A server built elsewhere (the emulator's), without its own signal handling."""
    server_.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    return server_


class _HeadLines(ReceiveBuffer):
    """h11's receive buffer, keeping the first line of the last head it handed h11 to parse: h11's error on a request
    line it refuses holds that line only as a repr."""

    first_line: bytearray | None = None

    def maybe_extract_lines(self) -> list[bytearray] | None:
        lines = super().maybe_extract_lines()
        self.first_line = lines[0] if lines else None
        return lines


class _Connection(h11.Connection):
    """h11's connection, keeping the error it raised on the request it refused (uvicorn catches it and answers 400
    whatever it was) and, when it refused a request's head, that request's line."""

    refused: h11.RemoteProtocolError | None = None
    refused_line: bytes | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._receive_buffer = _HeadLines()

    def next_event(self) -> Any:
        reading_head = self.their_state is h11.IDLE
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refused = exc
            if reading_head and isinstance(self._receive_buffer, _HeadLines):
                line = self._receive_buffer.first_line
                self.refused_line = bytes(line) if line is not None else None
            raise


class ReadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for reading each request: uvicorn bounds the idle time between
    requests only, so a client that connects and sends nothing, or sends its headers or body a byte at a time,
    held its connection for ever (2,000 such were held in a probe; the process's file descriptors are the only
    bound). The deadline runs from the connection's start, and again from each response's end: a request whose body
    is not read in full by then has its connection closed. The time the app takes to answer is not bounded here."""

    read_timeout = 60.0
    _deadline: asyncio.TimerHandle | None = None
    # A refused request (too long, malformed) is answered, then what the client still sends is read and dropped
    # until it closes, for this long and this much at most (see send_400_response).
    linger_seconds = 5.0
    linger_bytes = 16 * 1024 * 1024
    _lingering: int | None = None  # bytes dropped since the refusal; None: not refused

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _Connection(h11.SERVER, self.head_limit)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering is None:
            super().data_received(data)
            return
        self._lingering += len(data)
        if self._lingering > self.linger_bytes:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 refused: 400 to every one, then the connection closed at once. A request
        line or header block past h11's limit (`head_limit`, 16 KiB: a 200 KB query string, a 300 KB header) got
        that 400, and the rest of the request, still arriving or unread in the socket's buffer, made the kernel reset
        the connection: the client lost the answer in the reset (httpx: ReadError, connection reset by peer). Now
        such a request is answered 414 or 431 naming the limit; then our side of the connection is shut (the client
        reads the answer and its end) and what the client still sends is read and dropped until it closes (at most
        `linger_seconds` and `linger_bytes`), so no reset overtakes the answer."""
        if self.conn.our_state is not h11.IDLE:  # the app is answering the request: its answer cannot change
            super().send_400_response(msg)
            return
        status, text = self._refusal(msg)
        body = text.encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers,
                                                         reason=STATUS_PHRASES[status])))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self._lingering = 0
        self.transport.write_eof()
        self.transport.resume_reading()  # (uvicorn may have paused it)
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.linger_seconds, self.transport.close)

    def _refusal(self, msg: str) -> tuple[int, str]:
        refused: h11.RemoteProtocolError | None = getattr(self.conn, "refused", None)
        if refused is None:
            return 400, msg
        if refused.error_status_hint != 431:
            return _unprintable_in_request_line(getattr(self.conn, "refused_line", None)) or (400, msg)
        # h11 says 431 for any head past its limit: the request line alone is too long when it has no end yet.
        received = bytes(getattr(self.conn, "_receive_buffer", b"")).lstrip(b"\r\n")
        if received and b"\n" not in received:
            return 414, f"URI Too Long: the request line (method, path and query string) is longer than " \
                        f"{self.head_limit} bytes.\n"
        return 431, f"Request Header Fields Too Large: the request line and header fields are longer than " \
                    f"{self.head_limit} bytes in all.\n"

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.read_timeout, self._deadline_passed)

    def _deadline_passed(self) -> None:
        cycle = self.cycle
        still_reading = cycle is None or cycle.response_complete or (cycle.more_body and not cycle.response_started)
        if still_reading and not self.transport.is_closing():
            self.logger.debug("closing a connection that did not send its request within %.0f s", self.read_timeout)
            self.transport.close()


def _unprintable_in_request_line(line: bytes | None) -> tuple[int, str] | None:
    """The answer to a request line h11 refused for a byte that is not printable ASCII (a raw "é" or 0xFF in the
    path, a control byte): uvicorn's "Invalid HTTP request received." did not say which byte, nor what to do."""
    if not line:
        return None
    at = next((index for index, byte in enumerate(line) if not 0x20 <= byte <= 0x7E), None)
    if at is None:
        return None
    return 400, f"Bad Request: the request line (method, path and query string) holds a byte that is not printable " \
                f"ASCII: 0x{line[at]:02X} at byte {at + 1}; percent-encode it in the path or query string " \
                f"(%{line[at]:02X}).\n"


def server(app: Any, *, log_config: dict[str, Any] | None = None, read_timeout: float = ReadDeadline.read_timeout,
           beside_emulator: bool = False, **options: Any) -> Server:
    """`beside_emulator`: the emulator's server runs in this process. uvicorn's `access_log=False` empties the
    process's one `uvicorn.access` logger, the emulator's access lines with it (they stopped once the API had
    started); then it stays on, and the logging filter drops the API's own lines (RequestLogMiddleware writes
    those)."""
    protocol = type("ReadDeadline", (ReadDeadline,), {"read_timeout": read_timeout})
    # proxy_headers=False: who the client is is the app's to decide (api/forwarded.py, TEAMSVOICE_TRUSTED_PROXIES);
    # uvicorn's default believed X-Forwarded-For from 127.0.0.1 and ::1, so any local process could claim any address.
    config = uvicorn.Config(app, server_header=False, timeout_graceful_shutdown=5, log_config=log_config,
                            access_log=beside_emulator, http=protocol, proxy_headers=False, **options)
    return Server(config)


async def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Runs `main(stop)`; the first SIGINT/SIGTERM sets `stop`, a second one exits at once."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            os._exit(130)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    await main(stop)


async def serve_until(stop: asyncio.Event, api: uvicorn.Server, sock: socket.socket, *,
                      once_started: Callable[[], None] | None = None) -> None:
    """Serves until `stop` is set (or the server ends on its own), then shuts it down gracefully. `once_started`
    runs once the server has started (its app's lifespan ran: the job engine of `serve` is up); the commands pass
    `settle_heap`."""
    task = asyncio.create_task(api.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    watcher = asyncio.create_task(_once_started(api, once_started)) if once_started is not None else None
    done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    api.should_exit = True
    stopper.cancel()
    if watcher is not None:
        watcher.cancel()
    await task


async def _once_started(server_: uvicorn.Server, then: Callable[[], None]) -> None:
    while not server_.started:
        await asyncio.sleep(0.05)
    then()


# Python's cyclic garbage collector, left at its defaults, took about a tenth of a worker's CPU under bulk jobs
# (measured with gc.callbacks: 6.2 s of 62 s; bench/README.md run V): 1,800 collections of the youngest generation
# (after every 700 new objects, 1.2 ms each: an item's objects live across its Microsoft round trips, so many
# survive a collection and are promoted) and 14 full collections that walked every object of the process
# (modules, mappers, compiled statements: 0.17 s each).
YOUNG_GENERATION_THRESHOLD = 20_000


def settle_heap() -> None:
    """Once a process has started: what it built until then (imports, the app, the job engine) is moved out of
    the collector's sight (`gc.freeze`: still freed when unreferenced, never walked again), and the youngest
    generation is collected after YOUNG_GENERATION_THRESHOLD new objects, so that the objects of work in flight
    mostly die before a collection sees them. Measured in a worker: 1.3 s of collection where there were 6.2 s, for
    the same work. Called again (a second start in one process) it adds what was built since."""
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


async def wait_started(server_: uvicorn.Server, task: "asyncio.Task[None]", what: str) -> None:
    while not server_.started:
        if task.done():
            task.result()
            raise StartupError(f"the {what} stopped while starting")
        await asyncio.sleep(0.02)


def exit_now(code: int = 0) -> None:
    """Exits without waiting for threads parked in job steps (their work is committed or pending)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
