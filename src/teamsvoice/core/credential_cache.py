"""A short-lived, per-process cache of verified bearer credentials (issue 12 §4: the API layer thin in cost).

Every request of both API families resolves its bearer token to a caller (its login, roles and reseller scope):
one statement, about as costly as the route's own read. A caller resolved once is kept here for
`TEAMSVOICE_CREDENTIAL_CACHE_SECONDS` (default 5; 0 turns the cache off), keyed by the token's SHA-256 digest
(never the token), and never past the token's own expiry.

Revocation in this process is seen at once: any committed change to the rows a caller is made of (tokens,
logins, API clients, Fusion sessions and tenants, the reseller tree; see `CREDENTIAL_TABLES`) empties every cache
of the process when its transaction commits, whoever wrote it (a route, a job step, the console, a raw
connection), and for a moment after that nothing is stored (a request that read the old rows just before the
commit cannot store them). A change committed by another process (another api process, a worker, the CLI) is
seen here only once the entry ends: up to the TTL later. That is the trade-off the setting names.
"""

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import CompoundSelect, Delete, Insert, Select, Update, event
from sqlalchemy.engine import Connection, Engine

# The tables a resolved caller is made of (ConnecttoTeams: token, user, API client, reseller subtree; Fusion:
# session, login, the tenant of a tenant login, the reseller subtree). tests/unit/test_credential_cache.py
# checks that each is a table of ours.
CREDENTIAL_TABLES = frozenset({"oauth_tokens", "portal_users", "api_clients", "resellers", "fusion_sessions",
                               "fusion_users", "fusion_tenants"})
# A new row of these changes no caller already resolved (a new token, session, login or tenant); a new node of
# the reseller tree widens the scope of the logins above it.
_NEW_ROWS_CHANGE_NOTHING = CREDENTIAL_TABLES - {"resellers"}
HOLD_SECONDS = 1.0  # after a change: no entry stored (see the module's docstring)
MAX_ENTRIES = 10_000  # a bound on memory; past it the cache starts again empty

P = TypeVar("P")

_caches: "weakref.WeakSet[CredentialCache[Any]]" = weakref.WeakSet()
_CHANGED = "teamsvoice.credentials_changed"


class CredentialCache(Generic[P]):
    """Callers by (family, token digest). `generation()` before resolving, `put(..., generation=)` after: a
    change committed in between leaves the caller unstored."""

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[P, float]] = {}
        self._generation = 0
        self._hold_until = float("-inf")
        self._lock = threading.Lock()  # the console and the API share it with job steps' threads
        _caches.add(self)

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def generation(self) -> int:
        return self._generation

    def get(self, family: str, digest: str) -> P | None:
        entry = self._entries.get((family, digest)) if self.enabled else None
        if entry is None:
            return None
        caller, until = entry
        if self._clock() >= until:
            self._entries.pop((family, digest), None)
            return None
        return caller

    def put(self, family: str, digest: str, caller: P, *, token_lifetime_seconds: float, generation: int) -> None:
        """Keeps `caller` for the TTL, or less if its token expires sooner."""
        if not self.enabled or token_lifetime_seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            if generation != self._generation or now < self._hold_until:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(family, digest)] = (caller, now + min(self.ttl_seconds, token_lifetime_seconds))

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._hold_until = self._clock() + HOLD_SECONDS
            self._entries.clear()


def changes_credentials(statement: Any) -> bool:
    """Whether executing `statement` may change a resolved caller: an update or delete of a credential table,
    a new node of the reseller tree, or any statement that is not built (text, DDL) and names one of them."""
    if isinstance(statement, (Select, CompoundSelect)):
        return False
    if isinstance(statement, Insert):
        return statement.table.name in CREDENTIAL_TABLES - _NEW_ROWS_CHANGE_NOTHING
    if isinstance(statement, (Update, Delete)):
        return getattr(statement.table, "name", None) in CREDENTIAL_TABLES
    text = str(statement).lower()
    return any(name in text for name in CREDENTIAL_TABLES)


@event.listens_for(Engine, "before_execute")
def _note_change(conn: Connection, clauseelement: Any, *_: Any) -> None:
    if changes_credentials(clauseelement):
        conn.info[_CHANGED] = True


@event.listens_for(Engine, "commit")
def _forget_on_commit(conn: Connection) -> None:
    if conn.info.pop(_CHANGED, False):
        for cache in list(_caches):
            cache.clear()


@event.listens_for(Engine, "rollback")
def _nothing_changed(conn: Connection) -> None:
    # A connection the database dropped (a restart) is rolled back invalidated: its info goes with it, and reading it
    # raised PendingRollbackError in place of the loss, a transient failure (a job step's retry, a 503) made final.
    if not conn.invalidated:
        conn.info.pop(_CHANGED, None)
