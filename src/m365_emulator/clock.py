"""The emulator's only time source, so tests can move time forward (expired codes and tokens)."""

import time
from datetime import datetime, timezone


def now() -> float:
    return time.time()


def iso_now() -> str:
    """An ISO 8601 UTC timestamp the way Graph writes them (second precision, 'Z' suffix)."""
    return datetime.fromtimestamp(now(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
