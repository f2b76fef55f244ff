"""The emulator's document store: lookups by an indexed field read the matching documents only."""

import sqlite3
from pathlib import Path

import pytest

from m365_emulator.store import Store


def _number(tx, tenant: str, number: str, holder: str) -> None:  # type: ignore[no-untyped-def]
    tx.put("number", f"{tenant}:{number}", {"telephoneNumber": number, "assignmentTargetId": holder}, tenant)


def test_numbers_are_found_by_holder_per_tenant_in_creation_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    with store.transaction() as tx:
        for i in range(300):
            _number(tx, "t1", f"+3220000{i:03}", f"user-{i % 100}")
        _number(tx, "t2", "+3229999999", "user-7")  # another tenant's number of a user with the same id
    with store.transaction() as tx:
        held = tx.list_by("number", "t1", "assignmentTargetId", "user-7")
        scanned = [n for n in tx.list("number", "t1") if n["assignmentTargetId"] == "user-7"]
        assert held == scanned and [n["telephoneNumber"] for n in held] == ["+3220000007", "+3220000107", "+3220000207"]
        assert tx.list_by("number", "t2", "assignmentTargetId", "user-7") == [
            {"telephoneNumber": "+3229999999", "assignmentTargetId": "user-7"}]
        assert tx.list_by("number", "t1", "assignmentTargetId", "nobody") == []
        # A number moved to another holder is found under the new one only.
        _number(tx, "t1", "+3220000007", "user-8")
    with store.transaction() as tx:
        assert "+3220000007" not in [n["telephoneNumber"] for n in tx.list_by("number", "t1", "assignmentTargetId", "user-7")]
        assert "+3220000007" in [n["telephoneNumber"] for n in tx.list_by("number", "t1", "assignmentTargetId", "user-8")]
        plan = " ".join(str(row) for row in tx._connection.execute(  # type: ignore[attr-defined]
            "EXPLAIN QUERY PLAN SELECT data FROM documents WHERE kind = 'number' AND tenant_id = 't1' "
            "AND json_extract(data, '$.assignmentTargetId') = 'user-7' ORDER BY seq"))
        assert "numbers_by_assignment_target" in plan  # the lookup is an index search, not a scan of the tenant
        with pytest.raises(KeyError):
            tx.list_by("user", "t1", "displayName", "x")  # only indexed fields are answered
    store.close()


def test_a_store_written_before_the_index_existed_gets_it_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE documents (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL, "
        "tenant_id TEXT NOT NULL DEFAULT '', data TEXT NOT NULL, UNIQUE (kind, id));"
        "INSERT INTO documents (kind, id, tenant_id, data) VALUES "
        "('number', 't1:+3221', 't1', '{\"telephoneNumber\": \"+3221\", \"assignmentTargetId\": \"u1\"}');")
    old.commit()
    old.close()
    store = Store(path)
    with store.transaction() as tx:
        assert [n["telephoneNumber"] for n in tx.list_by("number", "t1", "assignmentTargetId", "u1")] == ["+3221"]
    store.close()
    indexes = [row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    assert "numbers_by_assignment_target" in indexes


def _licensed(tx, tenant: str, user: str, *skus: str) -> None:  # type: ignore[no-untyped-def]
    tx.put("user", user, {"id": user, "assignedLicenses": [{"skuId": s, "disabledPlans": []} for s in skus]}, tenant)


def test_licence_holders_are_counted_through_the_index_and_follow_every_write(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    with store.transaction() as tx:
        for i in range(200):
            _licensed(tx, "t1", f"u{i}", *(["phone"] if i % 4 else ["phone", "e5"]))
        _licensed(tx, "t2", "v0", "phone")  # another tenant's user
    with store.transaction() as tx:
        assert tx.count_by_element("user", "t1", "assignedLicenses", "phone") == 200
        assert tx.count_by_element("user", "t1", "assignedLicenses", "e5") == 50
        assert tx.count_by_element("user", "t2", "assignedLicenses", "phone") == 1
        _licensed(tx, "t1", "u1", "e5")  # phone removed, e5 added
        tx.delete("user", "u2")
        plan = " ".join(str(row) for row in tx._connection.execute(  # type: ignore[attr-defined]
            "EXPLAIN QUERY PLAN SELECT count(*) FROM elements WHERE kind = 'user' AND tenant_id = 't1' "
            "AND field = 'assignedLicenses' AND value = 'phone'"))
        assert "SEARCH" in plan and "documents" not in plan  # a range of the index: no user is read
        with pytest.raises(KeyError):
            tx.count_by_element("user", "t1", "groups", "x")
    with store.transaction() as tx:
        assert tx.count_by_element("user", "t1", "assignedLicenses", "phone") == 198
        assert tx.count_by_element("user", "t1", "assignedLicenses", "e5") == 51
    store.close()
    # A store whose index rows are missing (written before they existed) is counted right once opened again.
    with sqlite3.connect(tmp_path / "store.db") as raw:
        raw.execute("DELETE FROM elements")
    store = Store(tmp_path / "store.db")
    with store.transaction() as tx:
        assert tx.count_by_element("user", "t1", "assignedLicenses", "phone") == 198
        assert tx.count_by_element("user", "t2", "assignedLicenses", "phone") == 1
    store.close()
