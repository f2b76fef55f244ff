"""Persistence: every emulated object is a JSON document in one SQLite table, keyed by (kind, id).

A single connection guarded by a lock keeps read-modify-write sequences (seat counts, number
uniqueness, single-use codes) atomic under concurrent requests; the emulator's volumes are small.
Keys starting with "_" are emulator-internal and never rendered to clients.
"""

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Document = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant_id TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX IF NOT EXISTS documents_by_tenant ON documents (kind, tenant_id, seq);
CREATE TABLE IF NOT EXISTS elements (
    kind TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (kind, tenant_id, field, value, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS elements_by_document ON elements (kind, id);
"""

# Fields of a kind that requests look documents up by (besides the id), each with its own index, so that such
# a lookup reads the matching documents only, never the whole tenant's (a tenant may hold thousands of numbers,
# and every number assignment asks for the user's current ones). `Transaction.list_by` answers only these.
INDEXED_FIELDS = {("number", "assignmentTargetId"): "numbers_by_assignment_target"}


# Array fields whose elements requests count documents by: (kind, array field) -> the key inside each element. The
# store keeps one row per (document, element value) in `elements`, written with the document, so that a count (the
# users holding a licence: every `assignLicense` and every read of the tenant's SKUs asks) is an index range, not a
# read of every user of the tenant. `Transaction.count_by_element` answers only these.
COUNTED_ELEMENTS = {("user", "assignedLicenses"): "skuId"}


def _element_values(kind: str, data: Document) -> list[tuple[str, str]]:
    return [(field, str(element[key])) for (counted, field), key in COUNTED_ELEMENTS.items() if counted == kind
            for element in data.get(field) or [] if isinstance(element, dict) and element.get(key) is not None]


def _field(field: str) -> str:
    return f"json_extract(data, '$.{field}')"


def _index_ddl() -> str:
    return "".join(
        f"CREATE INDEX IF NOT EXISTS {name} ON documents (tenant_id, {_field(field)}, seq) WHERE kind = '{kind}';\n"
        for (kind, field), name in INDEXED_FIELDS.items())


class Transaction:
    """Document operations inside one SQLite transaction."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def get(self, kind: str, id: str) -> Document | None:
        row = self._connection.execute(
            "SELECT data FROM documents WHERE kind = ? AND id = ?", (kind, id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, id: str, data: Document, tenant_id: str = "") -> None:
        # Upsert keeps the original seq, so listing order stays the creation order.
        self._connection.execute(
            "INSERT INTO documents (kind, id, tenant_id, data) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data, tenant_id = excluded.tenant_id",
            (kind, id, tenant_id, json.dumps(data)),
        )
        if any(counted == kind for counted, _ in COUNTED_ELEMENTS):
            self._connection.execute("DELETE FROM elements WHERE kind = ? AND id = ?", (kind, id))
            self._add_elements(kind, id, data, tenant_id)

    def _add_elements(self, kind: str, id: str, data: Document, tenant_id: str) -> None:
        self._connection.executemany(
            "INSERT OR IGNORE INTO elements (kind, tenant_id, field, value, id) VALUES (?, ?, ?, ?, ?)",
            [(kind, tenant_id, field, value, id) for field, value in _element_values(kind, data)])

    def index_elements(self) -> None:
        """The `elements` rows again from the documents (for a store written before they existed, or by another
        version's `COUNTED_ELEMENTS`)."""
        self._connection.execute("DELETE FROM elements")
        for kind in {counted for counted, _ in COUNTED_ELEMENTS}:
            for id, tenant_id, data in self._connection.execute(
                    "SELECT id, tenant_id, data FROM documents WHERE kind = ?", (kind,)).fetchall():
                self._add_elements(kind, id, json.loads(data), tenant_id)

    def delete(self, kind: str, id: str) -> None:
        self._connection.execute("DELETE FROM documents WHERE kind = ? AND id = ?", (kind, id))
        self._connection.execute("DELETE FROM elements WHERE kind = ? AND id = ?", (kind, id))

    def count_by_element(self, kind: str, tenant_id: str, field: str, value: str) -> int:
        """How many of the tenant's documents of a kind hold an element whose key (`COUNTED_ELEMENTS`) is `value` in
        their array `field`: an index range over `elements`, whatever the tenant's size."""
        if (kind, field) not in COUNTED_ELEMENTS:
            raise KeyError(f"{kind}.{field} is not a counted array field of the emulator's store")
        row = self._connection.execute(
            "SELECT count(*) FROM elements WHERE kind = ? AND tenant_id = ? AND field = ? AND value = ?",
            (kind, tenant_id, field, value)).fetchone()
        return int(row[0])

    def list_by(self, kind: str, tenant_id: str, field: str, value: str) -> list[Document]:
        """The tenant's documents of a kind whose `field` is `value`, in creation order, through the field's index
        (`INDEXED_FIELDS`: only those pairs are answered)."""
        if (kind, field) not in INDEXED_FIELDS:
            raise KeyError(f"{kind}.{field} is not an indexed field of the emulator's store")
        rows = self._connection.execute(
            f"SELECT data FROM documents WHERE kind = '{kind}' AND tenant_id = ? AND {_field(field)} = ? ORDER BY seq",
            (tenant_id, value),
        )
        return [json.loads(row[0]) for row in rows]

    def list(self, kind: str, tenant_id: str | None = None) -> list[Document]:
        if tenant_id is None:
            rows = self._connection.execute(
                "SELECT data FROM documents WHERE kind = ? ORDER BY seq", (kind,)
            )
        else:
            rows = self._connection.execute(
                "SELECT data FROM documents WHERE kind = ? AND tenant_id = ? ORDER BY seq",
                (kind, tenant_id),
            )
        return [json.loads(row[0]) for row in rows]


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA busy_timeout=5000")
        self._connection.executescript(_SCHEMA + _index_ddl())
        with self.transaction() as tx:
            tx.index_elements()  # one pass at opening: the counts hold whatever wrote the store before

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._connection)
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def user_count(self, tenant_id: str) -> int:
        """How many directory users a tenant has (sizes its Microsoft request budget)."""
        with self._lock:
            row = self._connection.execute(
                "SELECT count(*) FROM documents WHERE kind = 'user' AND tenant_id = ?", (tenant_id,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def public(document: Document) -> Document:
    """The client-visible part of a document."""
    return {key: value for key, value in document.items() if not key.startswith("_")}
