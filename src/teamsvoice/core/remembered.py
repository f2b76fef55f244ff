"""What a process remembers of a tenant for a while: facts Microsoft changes rarely, read once instead of per
job item or list page (a voice routing policy's id, the tenant's subscribed SKUs, its role holders). In core/: the
Microsoft adapters and the domain use it alike."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Remembered(Generic[V]):
    """Values by key, each forgotten `seconds` after it was put (and dropped: the expired ones go whenever the
    values have doubled since the last sweep, so a process that served many tenants keeps only the recent ones)."""

    SWEEP_FROM = 1024

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[Hashable, tuple[V, float]] = {}
        self._sweep_at = self.SWEEP_FROM
        self._reading: dict[tuple[int, Hashable], tuple[asyncio.Lock, int]] = {}  # (loop, key) -> its read, askers

    async def recall(self, key: Hashable, read: Callable[[], Awaitable[V]]) -> V:
        """The value remembered for `key`, else `read()`'s (then remembered), read once however many ask at the same
        time: those that ask while it is read wait for that read (a bulk job's first items start together, and each
        read the tenant's SKUs: about 200 reads in the fleet bench's phase 2, where 40 serve, one per tenant per worker). A read that
        fails fails its own caller; the next waiting caller reads again. Per event loop (`serve` runs requests and jobs on two)."""
        known = self.get(key)
        if known is not None:
            return known
        scoped = (id(asyncio.get_running_loop()), key)
        lock, askers = self._reading.get(scoped) or (asyncio.Lock(), 0)
        self._reading[scoped] = (lock, askers + 1)
        try:
            async with lock:
                known = self.get(key)
                if known is None:
                    known = await read()
                    self.put(key, known)
                return known
        finally:
            lock, askers = self._reading[scoped]
            if askers == 1:
                del self._reading[scoped]  # its last asker: nothing of it is kept
            else:
                self._reading[scoped] = (lock, askers - 1)

    def get(self, key: Hashable) -> V | None:
        known = self._values.get(key)
        return known[0] if known is not None and time.monotonic() - known[1] < self.seconds else None

    def put(self, key: Hashable, value: V) -> None:
        now = time.monotonic()
        if len(self._values) >= self._sweep_at:
            self._values = {k: known for k, known in self._values.items() if now - known[1] < self.seconds}
            self._sweep_at = max(self.SWEEP_FROM, 2 * len(self._values))
        self._values[key] = (value, now)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)
