"""Per-test wall and CPU time, to see which tests wait and which compute (TEAMSVOICE_TEST_PROFILE=FILE).

Each pytest process (each xdist worker) appends one JSON line per test to FILE.<worker>: its node id, outcome
(passed, failed, skipped, error), start and wall time, and the CPU seconds spent meanwhile by this process (every
thread: the live server, the job engine, the in-process emulator), by its children that ended (servers a test
started and stopped), and by the PostgreSQL server this process started (its postmaster, ended backends and live
ones). CPU time holds whatever the machine's load, wall time does not: a test whose wall time is far above its CPU
time on a quiet machine is waiting. The live server's idle job engine costs CPU too (its pollers, about a tenth of
a core), so a test's CPU grows a little with its wall time.
"""

import json
import os
import resource
import time
from pathlib import Path

import pytest

_OUTCOME = pytest.StashKey[str]()
_TICK = os.sysconf("SC_CLK_TCK")
_postgres_roots: list[Path] = []


def watch_postgres(root: Path) -> None:
    """Counts this PostgreSQL server's CPU time (root: the directory holding its data/ directory)."""
    _postgres_roots.append(root)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its ended (reaped) children and its live children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                child_fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(child_fields[11]) + int(child_fields[12])
    except (OSError, ValueError, IndexError):
        return 0.0
    return total / _TICK


def _postgres_cpu() -> float:
    total = 0.0
    for root in _postgres_roots:
        try:
            pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        total += _tree_cpu(pid)
    return total


def _cpu() -> tuple[float, float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, _postgres_cpu()


class Profiler:
    def __init__(self, path: str, worker: str) -> None:
        self.path, self.worker = Path(f"{path}.{worker}"), worker

    def outcome(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Keeps the test's outcome: the first phase that did not pass (setup, call or teardown) decides."""
        if item.stash.get(_OUTCOME, "passed") == "passed" and not report.passed:
            item.stash[_OUTCOME] = "error" if report.when != "call" and report.failed else report.outcome

    def measure(self, item: pytest.Item):  # a generator for a hookwrapper: yields once, around the test
        start, cpu = time.time(), _cpu()
        yield
        end, after = time.time(), _cpu()
        record = {"test": item.nodeid, "worker": self.worker, "outcome": item.stash.get(_OUTCOME, "passed"),
                  "start": round(start, 3), "wall": round(end - start, 3),
                  "cpu_self": round(after[0] - cpu[0], 3), "cpu_children": round(after[1] - cpu[1], 3),
                  "cpu_postgres": round(after[2] - cpu[2], 3)}
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")
