"""What a process remembers of a tenant for a while: facts Microsoft changes rarely, read once instead of per
job item (a voice routing policy's id, the tenant's subscribed SKUs)."""

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Remembered(Generic[V]):
    """Values by key, each forgotten `seconds` after it was put."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._values: dict[Hashable, tuple[V, float]] = {}

    def get(self, key: Hashable) -> V | None:
        known = self._values.get(key)
        return known[0] if known is not None and time.monotonic() - known[1] < self.seconds else None

    def put(self, key: Hashable, value: V) -> None:
        self._values[key] = (value, time.monotonic())

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)
