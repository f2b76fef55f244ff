"""What every bench script that starts processes calls first (in its `__main__` block):
`end_children_on_exit()`, so that the processes it starts (`teamsvoice serve`, `emulator`, `api`, `worker`, an
emulator in a multiprocessing child, Kamailio, SIPp) end when the script ends, however it ends: normally, by an
exception, by Ctrl-C (SIGINT: KeyboardInterrupt at once, where the script is, rather than asyncio's cancel at its
next await, which let a script go on starting servers for a while) or by SIGTERM/SIGHUP (SystemExit); either way
the scripts' `finally` blocks stop their servers. What is still running at exit is then sent SIGTERM and, after
a grace period, SIGKILL; that runs before the interpreter waits for its threads. After a signal or an
exception the script then ends without waiting for them (an idle anyio worker thread kept a script alive after its loop was interrupted;
a signal used to end it at once), and within DEADLINE_SECONDS of the signal whatever its `finally` blocks do.

Left alone: processes in a session of their own, which arrange their own end (tests/support/postgres.py's
watchdog stops its PostgreSQL once this process's pipe to it closes, however this process ends), and
multiprocessing's resource tracker (it ends when its pipe closes, and ignores SIGTERM). A SIGKILL of the script
runs nothing: its children then stay (the PostgreSQL watchdog still stops its server)."""

import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

GRACE_SECONDS = 20.0  # from SIGTERM to SIGKILL, for what is still running at exit
DEADLINE_SECONDS = 120.0  # from a signal to the script's end, whatever its threads do


def end_children_on_exit() -> None:
    """SIGINT, SIGTERM and SIGHUP end the script at once through its `finally` blocks (KeyboardInterrupt,
    SystemExit); at exit, every process it started that is still running is ended (`end_children`). Call it
    before asyncio.run: the runner then keeps this SIGINT handler instead of its own."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    # Before the interpreter joins its non-daemon threads (one stuck there would keep atexit from running).
    threading._register_atexit(_at_exit)  # type: ignore[attr-defined]


_signalled: list[int] = []  # the exit status a signal gave


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    _signalled.append(128 + signum)
    for other in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # once: the cleanup runs without interruption
        signal.signal(other, signal.SIG_IGN)
    threading.Thread(target=_end_by_deadline, args=(128 + signum,), daemon=True, name="bench-deadline").start()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _at_exit() -> None:
    end_children()
    # Ended by a signal or by an exception (printed already; sys.last_value is set then): do not wait for threads.
    if _signalled or getattr(sys, "last_value", None) is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_signalled[0] if _signalled else 1)


def _end_by_deadline(code: int) -> None:
    time.sleep(DEADLINE_SECONDS)
    print(f"bench: still running {DEADLINE_SECONDS:.0f} s after the signal; ending it", file=sys.stderr)
    end_children()
    os._exit(code)


def end_children(grace: float = GRACE_SECONDS) -> None:
    """Sends SIGTERM to this process's descendants that belong to its session, waits up to `grace` seconds
    for them to end, then sends SIGKILL to the rest."""
    targets = _descendants(os.getpid(), os.getsid(0))
    if not targets:
        return
    print(f"bench: ending {len(targets)} process(es) this script started: {sorted(targets)}", file=sys.stderr)
    _signal_all(targets, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while (alive := [pid for pid in targets if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_all(alive, signal.SIGKILL)
    for pid in alive:
        _alive(pid)  # reaps our own children


def _descendants(pid: int, session: int) -> list[int]:
    found = []
    for child in _children(pid):
        try:
            if os.getsid(child) != session or "multiprocessing.resource_tracker" in _cmdline(child):
                continue
        except OSError:  # it has just ended
            continue
        found += [child, *_descendants(child, session)]
    return found


def _children(pid: int) -> list[int]:
    children = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return children


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _alive(pid: int) -> bool:
    """False once the process has ended (a zombie child of this process is reaped)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child (a grandchild), or reaped already
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
