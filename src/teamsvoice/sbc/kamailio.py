"""The Kamailio adapter of the SBC port (deploy/kamailio/kamailio.cfg is the configuration it expects).

teamsvoice owns two tables of Kamailio's database and nothing else in it:
- `uacreg` (uac module): one row per PBX user, l_uuid "tv-<id>"; rows of other l_uuids are left alone;
- `dispatcher`: set 1 (Microsoft's proxies) and sets 1000+ (PBX locations); other sets are left alone.
After writing, it tells Kamailio over JSON-RPC (jsonrpcs over HTTP, loopback): `uac.reg_refresh` per
changed registration (the next REGISTER uses the new values within one reg_timer_interval),
`uac.reg_disable`, `uac.reg_unregister` (REGISTER with expires 0; a refresh in flight and then its answer awaited) +
`uac.reg_remove` for a user that is gone or moved to another registrar, `dispatcher.reload` when the targets changed.

What Kamailio holds in memory (`uac.reg_dump`) is compared with the desired state, not the table, so a
change written to the table whose RPC failed is still applied on the next try.
"""

import itertools
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, create_engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from teamsvoice.core.db import sync_url
from teamsvoice.domain.sbc.ports import ApplyReport, DesiredSbc, HeldRegistration, Registration, RegistrationState, SbcUnavailable
from teamsvoice.domain.sbc.service import KEY_PREFIX, LOCATION_SET_BASE, MICROSOFT_SET
from teamsvoice.settings import Settings

log = logging.getLogger("teamsvoice.sbc")

# Kamailio 5.x schema (kamailio-*-modules: db_*/{standard,uac,dispatcher}-create.sql), with its versions.
metadata = MetaData()
version_table = Table("version", metadata, Column("id", Integer, primary_key=True),
                      Column("table_name", String(32), nullable=False, unique=True),
                      Column("table_version", Integer, nullable=False, default=0))
uacreg = Table(
    "uacreg", metadata, Column("id", Integer, primary_key=True),
    *(Column(name, String(64), nullable=False, server_default="") for name in (
        "l_uuid", "l_username", "l_domain", "r_username", "r_domain", "realm", "auth_username", "auth_password")),
    Column("auth_ha1", String(128), nullable=False, server_default=""),
    Column("auth_proxy", String(255), nullable=False, server_default=""),
    Column("expires", Integer, nullable=False, server_default="0"),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("reg_delay", Integer, nullable=False, server_default="0"),
    Column("contact_addr", String(255), nullable=False, server_default=""),
    Column("socket", String(128), nullable=False, server_default=""),
)
dispatcher = Table("dispatcher", metadata, Column("id", Integer, primary_key=True),
                   Column("setid", Integer, nullable=False, server_default="0"),
                   Column("destination", String(192), nullable=False, server_default=""),
                   Column("flags", Integer, nullable=False, server_default="0"),
                   Column("priority", Integer, nullable=False, server_default="0"),
                   Column("attrs", String(128), nullable=False, server_default=""),
                   Column("description", String(64), nullable=False, server_default=""))
TABLE_VERSIONS = {"version": 1, "uacreg": 5, "dispatcher": 4}
# Compared between the table / Kamailio's memory and the desired registration.
_FIELDS = ("l_username", "l_domain", "r_username", "r_domain", "auth_username", "auth_password", "auth_proxy", "expires")
# A change of any of these moves the registration to another registrar (or AOR): unregister there first.
_TARGET = ("r_username", "r_domain", "auth_username", "auth_proxy")

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _engine(url: str) -> Engine:
    with _engines_lock:
        if url not in _engines:
            # hide_parameters: an error's text (logged at every retry of a sync) would show the SIP passwords written.
            _engines[url] = create_engine(sync_url(url), pool_pre_ping=True, hide_parameters=True)
        return _engines[url]


def _row(reg: Registration) -> dict[str, Any]:
    return {"l_uuid": reg.key, "l_username": reg.number, "l_domain": reg.gateway_fqdn, "r_username": reg.pbx_user_id,
            "r_domain": reg.pbx_domain, "auth_username": reg.pbx_auth_user_id, "auth_password": reg.password,
            "auth_proxy": reg.proxy, "expires": reg.expires}


def _same(held: dict[str, Any], wanted: dict[str, Any], fields: tuple[str, ...] = _FIELDS) -> bool:
    return all(str(held.get(f) if held.get(f) is not None else "") == str(wanted[f]) for f in fields)


_OUR_SETS = (dispatcher.c.setid == MICROSOFT_SET) | (dispatcher.c.setid >= LOCATION_SET_BASE)


def _stored_registrations(connection: Connection) -> dict[str, dict[str, Any]]:
    """Our rows of `uacreg`, by key."""
    return {r.l_uuid: r._asdict() for r in connection.execute(select(uacreg).where(uacreg.c.l_uuid.like(f"{KEY_PREFIX}%")))}


def _stored_targets(connection: Connection) -> list[tuple[int, str, str]]:
    """Our rows of `dispatcher`, as `_wanted_targets` spells them."""
    return sorted((r.setid, r.destination, r.description) for r in connection.execute(select(dispatcher).where(_OUR_SETS)))


def _wanted_targets(desired: DesiredSbc) -> list[tuple[int, str, str]]:
    return sorted((t.set_id, t.uri, t.description[:64]) for t in desired.targets)


def registration_state(record: dict[str, Any]) -> RegistrationState:
    """uac.reg_dump flags: 1 disabled, 2 in progress, 4 registered, 8 in progress with auth, 16 initialised."""
    flags = int(record.get("flags") or 0)
    if flags & 1:
        return "DISABLED"
    if flags & 4:
        return "REGISTERED"
    if flags & (2 | 8):
        return "REGISTERING"
    if flags & 16:
        return "FAILED"  # tried, not registered, waiting for reg_retry_interval
    return "PENDING"


class SbcRefused(SbcUnavailable):
    """Kamailio answered with a JSON-RPC error (it is up, but refused the command)."""


class KamailioSbc:
    name = "kamailio"

    def __init__(self, db_url: str, rpc_url: str, *, timeout: float = 5.0) -> None:
        self.db_url, self.rpc_url, self.timeout = db_url, rpc_url, timeout
        self._ids = itertools.count(1)

    @classmethod
    def for_settings(cls, settings: Settings) -> "KamailioSbc":
        assert settings.sbc_kamailio_db_url and settings.sbc_kamailio_rpc_url
        return cls(settings.sbc_kamailio_db_url, settings.sbc_kamailio_rpc_url, timeout=settings.sbc_rpc_timeout_seconds)

    # --- Kamailio's database -------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Creates the tables Kamailio reads (and their version rows) when missing; Kamailio needs them at
        start-up. A SQLite file is made readable by its owner only: it holds SIP passwords."""
        try:
            engine = _engine(self.db_url)
            metadata.create_all(engine)
            with engine.begin() as connection:
                known = set(connection.scalars(select(version_table.c.table_name)))
                for name, number in TABLE_VERSIONS.items():
                    if name not in known:
                        connection.execute(insert(version_table).values(table_name=name, table_version=number))
        except SQLAlchemyError as exc:
            raise SbcUnavailable(f"Kamailio's database is not usable: {type(exc).__name__}: {exc}") from exc
        if self.db_url.startswith("sqlite:///"):
            Path(self.db_url.removeprefix("sqlite:///")).chmod(0o600)

    def up_to_date(self, desired: DesiredSbc) -> bool:
        """Whether our rows of Kamailio's tables are exactly `desired`: what the last sync wrote (Kamailio loads them
        at its start, and a sync writes them before telling Kamailio). A row missing, different or left over is a
        change no sync has applied (its enqueue was lost). Read only, no JSON-RPC: the periodic sweep asks it."""
        wanted = {r.key: _row(r) for r in desired.registrations}
        try:
            with _engine(self.db_url).connect() as connection:
                rows, targets = _stored_registrations(connection), _stored_targets(connection)
        except SQLAlchemyError as exc:
            raise SbcUnavailable(f"Kamailio's database is not usable: {type(exc).__name__}: {exc}") from exc
        return (rows.keys() == wanted.keys() and all(_same(rows[key], row) for key, row in wanted.items())
                and targets == _wanted_targets(desired))

    def _write(self, desired: DesiredSbc) -> tuple[set[str], bool]:
        """Writes our rows; answers the keys whose row changed and whether the targets changed."""
        wanted = {r.key: _row(r) for r in desired.registrations}
        try:
            with _engine(self.db_url).begin() as connection:
                rows = _stored_registrations(connection)
                gone = [key for key in rows if key not in wanted]
                if gone:
                    connection.execute(delete(uacreg).where(uacreg.c.l_uuid.in_(gone)))
                changed = set()
                for key, row in wanted.items():
                    if key not in rows:
                        connection.execute(insert(uacreg).values(**row))
                    elif not _same(rows[key], row):
                        connection.execute(update(uacreg).where(uacreg.c.l_uuid == key).values(**row))
                    else:
                        continue
                    changed.add(key)
                wanted_targets = _wanted_targets(desired)
                targets_changed = _stored_targets(connection) != wanted_targets
                if targets_changed:
                    connection.execute(delete(dispatcher).where(_OUR_SETS))
                    for set_id, uri, description in wanted_targets:
                        connection.execute(insert(dispatcher).values(setid=set_id, destination=uri, description=description))
        except SQLAlchemyError as exc:
            raise SbcUnavailable(f"Kamailio's database is not usable: {type(exc).__name__}: {exc}") from exc
        return changed | set(gone), targets_changed

    # --- JSON-RPC -------------------------------------------------------------------------------------

    def rpc(self, method: str, *params: Any, missing_ok: bool = False) -> Any:
        body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": next(self._ids)}
        try:
            response = httpx.post(self.rpc_url, json=body, timeout=self.timeout, trust_env=False)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SbcUnavailable(f"Kamailio's JSON-RPC at {self.rpc_url} did not answer: {type(exc).__name__}: {exc}") from exc
        if "error" in answer:
            error = answer["error"] or {}
            if missing_ok and error.get("code") == 404:
                return None
            raise SbcRefused(f"Kamailio refused {method}: {error.get('code')} {error.get('message')}")
        return answer.get("result")

    def _memory(self) -> dict[str, dict[str, Any]]:
        return {r["l_uuid"]: r for r in (self.rpc("uac.reg_dump") or []) if str(r.get("l_uuid", "")).startswith(KEY_PREFIX)}

    def _dispatcher_memory(self) -> list[tuple[int, str]]:
        try:
            listed = self.rpc("dispatcher.list") or {}
        except SbcRefused:  # "500 No Destination Sets": nothing loaded yet
            return []
        found = []
        for record in listed.get("RECORDS", []) if isinstance(listed, dict) else []:
            set_ = record.get("SET", {})
            for target in set_.get("TARGETS", []):
                found.append((int(set_.get("ID", 0)), target.get("DEST", {}).get("URI", "")))
        return sorted(t for t in found if t[0] == MICROSOFT_SET or t[0] >= LOCATION_SET_BASE)

    # --- the port -------------------------------------------------------------------------------------

    def apply(self, desired: DesiredSbc) -> ApplyReport:
        report = ApplyReport()
        memory = self._memory()  # first: Kamailio down means nothing is written half-way
        self.ensure_schema()
        wanted = {r.key: _row(r) for r in desired.registrations}
        leaving = [key for key, held in memory.items() if key not in wanted or not _same(held, wanted[key], _TARGET)]
        if leaving:
            self._unregister(leaving, report)
        for key in leaving:
            if key not in wanted and key not in report.refused:
                try:
                    self.rpc("uac.reg_remove", key, missing_ok=True)
                except SbcRefused as exc:
                    report.refused[key] = exc.message
        self._write(desired)
        for key, row in wanted.items():
            held = memory.get(key)
            if held is None or not _same(held, row) or int(held.get("flags") or 0) & 1:  # (1: disabled, by a sync cut short)
                try:
                    self.rpc("uac.reg_refresh", key)
                    report.registered_or_refreshed.append(key)
                except SbcRefused as exc:
                    report.refused[key] = exc.message
        for key, reason in report.refused.items():
            log.warning("Kamailio refused the registration %s: %s (shown as drift; retried on the next sync)", key, reason)
        wanted_targets = sorted((t.set_id, t.uri) for t in desired.targets)
        if self._dispatcher_memory() != wanted_targets:
            self._reload_targets(wanted_targets, report)
        return report

    def _reload_targets(self, wanted: list[tuple[int, str]], report: ApplyReport) -> None:
        """dispatcher.reload. Kamailio loads every target it can and answers "Reload Failed" when one could not be
        loaded (a PBX name it cannot resolve): that target is reported refused, the others are in use, and the sync
        ends (retrying it for ever held every other customer's SBC changes behind it, one sync running at a time).
        "Ongoing reload" (one reload a second, reload_delta) is waited out."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                self.rpc("dispatcher.reload")
                break
            except SbcRefused as exc:
                if "Ongoing reload" in exc.message and time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                if "Reload Failed" not in exc.message:
                    raise
                break
        report.targets_reloaded = True
        loaded = set(self._dispatcher_memory())
        for set_id, uri in wanted:
            if (set_id, uri) not in loaded:
                report.refused[f"target {set_id} {uri}"] = (f"Kamailio could not load the routing target {uri} (set "
                                                            f"{set_id}): a name it cannot resolve? See its log")
                log.warning("Kamailio could not load the routing target %s (set %d); the others are in use", uri, set_id)

    def _unregister(self, leaving: list[str], report: ApplyReport) -> None:
        """Each leaving registration (user gone, or moved to another registrar) is taken back at its PBX (REGISTER
        with expires 0) before its record is removed or rewritten. First disabled, so that Kamailio starts no refresh
        of it from now on; then a REGISTER in flight (a refresh) is let end, since a record rewritten under it sends
        the challenge's answer to the new PBX and the old one keeps the binding; then the un-REGISTER of each one
        registered, and its answer, are awaited (Kamailio drops a pending un-REGISTER when its record is gone by the
        time the PBX's challenge comes back, and a PBX not on loopback takes milliseconds)."""
        for key in leaving:
            try:
                self.rpc("uac.reg_disable", "l_uuid", key, missing_ok=True)
            except SbcRefused as exc:  # one record Kamailio refuses must not hold back the others
                report.refused[key] = exc.message
        self._await_idle(leaving, "its REGISTER in flight")
        memory = self._memory()
        for key in leaving:
            if key in report.refused or key not in memory or not int(memory[key].get("flags") or 0) & 4:
                continue  # never registered there (or its refresh failed): nothing to take back
            try:
                self.rpc("uac.reg_unregister", "l_uuid", key, missing_ok=True)
                report.unregistered.append(key)
            except SbcRefused as exc:
                report.refused[key] = exc.message
        self._await_idle(report.unregistered, "the un-REGISTER")

    def _await_idle(self, keys: list[str], what: str) -> None:
        """Until no record of `keys` has a REGISTER in progress (flags 2 or 8), at most `timeout`."""
        deadline = time.monotonic() + self.timeout
        pending = set(keys)
        while pending:
            memory = self._memory()
            pending = {k for k in pending if k in memory and int(memory[k].get("flags") or 0) & (2 | 8)}
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        if pending:
            log.warning("the PBX did not answer %s of %s within %.0f s; going on", what, ", ".join(sorted(pending)),
                        self.timeout)

    def held(self, desired: DesiredSbc) -> list[HeldRegistration]:
        wanted = {r.key: _row(r) for r in desired.registrations}
        now = int(time.time())
        result = []
        for key, record in sorted(self._memory().items()):
            state = registration_state(record)
            refresh_in = None
            if state in ("REGISTERED", "FAILED") and record.get("timer_expires"):
                refresh_in = max(0, int(record["timer_expires"]) - now)
            result.append(HeldRegistration(
                key=key, number=str(record.get("l_username") or ""), pbx_user_id=str(record.get("r_username") or ""),
                pbx_domain=str(record.get("r_domain") or ""), proxy=str(record.get("auth_proxy") or ""), state=state,
                refresh_in=refresh_in, matches=key in wanted and _same(record, wanted[key])))
        return result
