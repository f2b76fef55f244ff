"""A PBX change committed but never enqueued for the SBC (the enqueue after the commit failed: the job engine's
database busy) still reaches the SBC: the request answers its committed change, and the workers' periodic sweep
(`runtime.sweep_unstarted_work`, driven here directly) finds Kamailio's tables behind teamsvoice's records and
syncs them. Kamailio's database without Kamailio: a sync here writes the tables and asks no JSON-RPC."""

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from dbos import DBOS
from sqlalchemy.exc import OperationalError

from teamsvoice.domain.sbc import workflows
from teamsvoice.domain.sbc.ports import ApplyReport, DesiredSbc, Registration, RouteTarget, SbcUnavailable
from teamsvoice.jobs import runtime
from teamsvoice.sbc import sbc_configured
from teamsvoice.sbc.kamailio import KamailioSbc

from tests.e2e.test_calling import location_body
from tests.support.ctt import bearer
from tests.support.onboarding import Onboarding

NO_RPC = "http://127.0.0.1:9/RPC"  # (nothing listens: the sweep never asks Kamailio itself)


def registration(key: str, password: str = "Secret-1") -> Registration:
    return Registration(key=key, number="+3225550101", gateway_fqdn="sbc.test.example", pbx_user_id="104",
                        pbx_auth_user_id="104", password=password, pbx_domain="pbx.example.com",
                        proxy="sip:pbx.example.com:5060", expires=300)


def rows(db: Path, query: str) -> list[tuple]:
    with closing(sqlite3.connect(db)) as connection:
        return connection.execute(query).fetchall()


def test_the_sbc_is_up_to_date_when_our_rows_of_kamailios_tables_are_the_desired_state(tmp_path) -> None:
    db = tmp_path / "kamailio.sqlite3"
    sbc = KamailioSbc(f"sqlite:///{db}", NO_RPC)
    sbc.ensure_schema()
    desired = DesiredSbc([registration("tv-1"), registration("tv-2")],
                         [RouteTarget(1, "sip:127.0.0.1:5999", "Microsoft Direct Routing proxy"),
                          RouteTarget(1001, "sip:pbx.example.com:5060", "PBX location 1")])
    assert sbc.up_to_date(desired) is False  # nothing written yet
    sbc._write(desired)
    assert sbc.up_to_date(desired) is True
    with closing(sqlite3.connect(db)) as connection, connection:  # rows that are not ours change nothing
        connection.execute("INSERT INTO uacreg (l_uuid, l_username) VALUES ('other-1', '+3225550199')")
        connection.execute("INSERT INTO dispatcher (setid, destination) VALUES (7, 'sip:elsewhere.example')")
    assert sbc.up_to_date(desired) is True
    assert sbc.up_to_date(DesiredSbc([registration("tv-1"), registration("tv-2", "Secret-2")], desired.targets)) is False
    assert sbc.up_to_date(DesiredSbc([registration("tv-1")], desired.targets)) is False  # tv-2's row is left over
    assert sbc.up_to_date(DesiredSbc(desired.registrations, desired.targets[:1])) is False  # a target left over
    with pytest.raises(SbcUnavailable):
        KamailioSbc(f"sqlite:///{tmp_path / 'missing' / 'kamailio.sqlite3'}", NO_RPC).up_to_date(desired)


class TablesOnly(KamailioSbc):
    """Kamailio's database without Kamailio: a sync writes the tables (what Kamailio loads) and no more."""

    def apply(self, desired: DesiredSbc) -> ApplyReport:
        self.ensure_schema()
        self._write(desired)
        return ApplyReport()


async def wait_for(what, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout  # (ends as soon as it holds; a minute: a loaded machine)
    while not what():
        assert time.monotonic() < deadline, "the SBC's tables did not catch up"
        await asyncio.sleep(0.1)


async def syncs_ended() -> None:
    deadline = time.monotonic() + 60  # (a minute: a loaded machine)
    # The synchronous API in a thread: DBOS's *_async methods would make DBOS's pool the suite loop's executor.
    while await asyncio.to_thread(DBOS.list_workflows, name="sync_sbc", status=["PENDING", "ENQUEUED"],
                                  load_input=False, load_output=False):
        assert time.monotonic() < deadline, "an SBC sync is still running"
        await asyncio.sleep(0.1)


async def test_a_change_whose_sync_was_never_enqueued_reaches_the_sbc_at_the_sweep(  # type: ignore[no-untyped-def]
        client, live, organisation, receiver, tmp_path, monkeypatch) -> None:
    db = tmp_path / "kamailio.sqlite3"
    tables = TablesOnly(f"sqlite:///{db}", NO_RPC)
    tables.ensure_schema()
    with closing(sqlite3.connect(db)) as connection, connection:  # a deleted user's registration whose sync was lost
        connection.execute("INSERT INTO uacreg (l_uuid, l_username, r_username, r_domain) "
                           "VALUES ('tv-987654321', '+3225550100', '105', 'pbx.example.com')")
    monkeypatch.setattr(live.settings, "sbc_kamailio_db_url", tables.db_url)
    monkeypatch.setattr(live.settings, "sbc_kamailio_rpc_url", tables.rpc_url)
    monkeypatch.setattr(live.settings, "sbc_microsoft_proxies", ["sip:127.0.0.1:5999"])
    monkeypatch.setattr(workflows, "sbc_from_settings", lambda settings: tables if sbc_configured(settings) else None)
    enqueue, busy = workflows._enqueue, [True]

    def enqueue_unless_busy() -> bool:
        if busy[0]:
            raise OperationalError("INSERT INTO workflow_status ...", {}, Exception("database is locked"))
        return enqueue()

    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await onboarding.create()
    headers = bearer(onboarding.token)
    monkeypatch.setattr(workflows, "_enqueue", enqueue_unless_busy)

    def targets() -> list[tuple]:
        return rows(db, "SELECT setid, destination FROM dispatcher ORDER BY setid")

    # The location is committed; its sync's enqueue fails: the answer is still the committed location (no 500).
    created = await client.post("/pbx/configurePBX", headers=headers, json=location_body(onboarding.enterprise_id))
    assert created.status_code == 200, created.text
    location_set = 1000 + created.json()["id"]
    busy[0] = False
    assert targets() == [] and rows(db, "SELECT l_uuid FROM uacreg") == [("tv-987654321",)]  # nothing reached the SBC
    assert await asyncio.to_thread(runtime.sweep_unstarted_work) >= 1
    await wait_for(lambda: targets() == [(1, "sip:127.0.0.1:5999"), (location_set, "sip:pbx.contoso-voice.example:5060")]
                   and rows(db, "SELECT l_uuid FROM uacreg") == [])
    await syncs_ended()
    assert await asyncio.to_thread(workflows.resume_unstarted) == 0  # caught up: the sweep enqueues nothing more

    # The location is deleted; that enqueue is lost too: the sweep takes its target away.
    busy[0] = True
    deleted = await client.delete(f"/pbx/deletePBXLocation/{created.json()['id']}", headers=headers)
    assert deleted.status_code == 204, deleted.text
    busy[0] = False
    assert (location_set, "sip:pbx.contoso-voice.example:5060") in targets()
    assert await asyncio.to_thread(workflows.resume_unstarted) == 1
    await wait_for(lambda: targets() == [(1, "sip:127.0.0.1:5999")])
    await syncs_ended()  # before the SBC is detached again
