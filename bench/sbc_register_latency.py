"""How long from a ConnecttoTeams API change to the new REGISTER at the customer's PBX (prints figures; not a test).

    .venv/bin/python bench/sbc_register_latency.py [--users 500] [--concurrency 20]

Runs in one process, all on loopback: the Microsoft 365 emulator, a teamsvoice server (API + job engine,
SQLite) with the SBC attached, Kamailio with deploy/kamailio/kamailio.cfg (TLS off, its default
reg_timer_interval of 1 s), and sipp as the PBX registrar (digest auth) knowing every user's password. An
enterprise is onboarded to an emulated tenant of N users, with a direct route and one PBX location.

- 1 user: configureUser for one new user; then a new password for it. Each time: the API call's own time,
  and from the call's start to the first REGISTER that authenticates with the new values, and to the 200 OK.
- N users at once: N configureUser calls (`--concurrency` in flight); time until every user's authenticated
  REGISTER reached the PBX, with the distribution per user (from that user's call), and how many syncs ran.
Needs kamailio (kamailio-sqlite-modules, kamailio-json-modules) and sipp (sip-tester).
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.support.ctt import bearer, enterprise_body, reseller_catalogue, token_for  # noqa: E402
from tests.support.onboarding import Onboarding  # noqa: E402
from tests.support.receiver import WebhookReceiver  # noqa: E402
from tests.support.sip import Kamailio, SippRegistrar, digest_valid, missing  # noqa: E402

PASSWORD = "Bench-Admin-1!"


class BigOnboarding(Onboarding):
    async def create(self, *, manage: bool = True) -> int:
        self.token = await token_for(self.client, self.login)
        pbx, sbc = await reseller_catalogue(self.client, self.token, self.login.reseller_id)
        body = enterprise_body(self.login.reseller_id, self.name, pbx=pbx[:1], sbc=sbc[:1], manage=manage) | {"userLimit": 100000}
        created = await self.client.post("/reseller/newEnterprise", headers=bearer(self.token), json=body)
        assert created.status_code == 200, created.text
        self.enterprise_id = created.json()
        return self.enterprise_id


def user_body(tenant_id: str, upn: str, number: str, route: int, pbx_id: str, password: str) -> dict:
    return {"directRouteId": route, "password": password, "rePassword": password, "pbxAuthUserId": pbx_id,
            "pbxLocation": "Bench PBX", "pbxUserId": pbx_id, "phoneNumber": number, "teamsUserId": upn,
            "tenantID": tenant_id, "userType": "Service"}


def first_register(pbx: SippRegistrar, pbx_id: str, password: str, since: float) -> tuple[float | None, float | None]:
    """Times of the first authenticated REGISTER for the user with that password after `since`, and of its 200 OK."""
    register_at = ok_at = None
    call_id = None
    for m in pbx.messages():
        if m.at < since:
            continue
        if register_at is None and m.direction == "received" and m.first_line.startswith("REGISTER ") \
                and m.header("Authorization") and digest_valid(m, pbx_id, password):
            register_at, call_id = m.at, m.header("Call-ID")
        elif register_at is not None and m.direction == "sent" and m.header("Call-ID") == call_id \
                and m.first_line == "SIP/2.0 200 OK":
            ok_at = m.at
            break
    return register_at, ok_at


def wait(pbx: SippRegistrar, pbx_id: str, password: str, since: float, timeout: float = 60) -> tuple[float, float | None]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        register_at, ok_at = first_register(pbx, pbx_id, password, since)
        if register_at is not None and ok_at is not None:
            return register_at, ok_at
        time.sleep(0.05)
    raise SystemExit(f"no authenticated REGISTER for {pbx_id} within {timeout} s")


async def main(args: argparse.Namespace) -> None:
    if reason := missing():
        raise SystemExit(f"cannot run: {reason}")
    from m365_emulator.server import EmulatorServer
    from m365_emulator.settings import EmulatorSettings
    from teamsvoice import demo
    from teamsvoice.app import create_app
    from teamsvoice.cli import embedded_settings
    from teamsvoice.core.db import create_engine, session_factory, upgrade_database
    from teamsvoice.settings import Settings
    from tests.support.live import LiveServer, bound_socket

    root = Path(tempfile.mkdtemp(prefix="sbc-bench-"))
    (root / "m365").mkdir()
    (root / "data").mkdir()
    emulator = EmulatorServer(EmulatorSettings(data_dir=root / "m365", public_url=""), host="127.0.0.1", port=0)
    emulator.start()
    ca = str(emulator.ca_cert_path)
    domain = f"sbcbench{uuid.uuid4().hex[:6]}.example"
    with httpx.Client(base_url=emulator.url, verify=ca, timeout=300) as admin:
        created = admin.post("/_admin/tenants", json={
            "displayName": "SBC Bench", "domain": domain, "userCount": args.users + 2,
            "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}}).raise_for_status().json()
    tenant = {"tenantId": created["tenantId"], "domain": domain,
              "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}}

    kamailio = Kamailio(root).start()
    pbx_ids = [str(20000 + i) for i in range(args.users + 1)]
    pbx = SippRegistrar(root, pbx_ids[0], "", users={p: f"pw-{p}-a" for p in pbx_ids} | {pbx_ids[0]: "pw-one-b"})
    pbx.start()

    database_url = f"sqlite:///{root / 'data' / 'teamsvoice.sqlite3'}"
    upgrade_database(database_url)
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = embedded_settings(Settings(
        data_dir=root / "data", database_url=database_url, public_url=url, sbc_kamailio_db_url=kamailio.db_url,
        sbc_kamailio_rpc_url=kamailio.rpc_url, sbc_microsoft_proxies=["sip:127.0.0.1:5999"]), emulator.url, Path(ca))
    demo.register_application(emulator.url, ca, client_id=settings.microsoft_client_id,
                              client_secret=settings.microsoft_client_secret, redirect_uri=f"{url}/restricted/handleResponse")
    server = LiveServer(create_app(settings), sock).start()
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        organisation = await demo.seed_organisation(session)
        await session.commit()
    await engine.dispose()
    receiver = WebhookReceiver().start()
    try:
        async with httpx.AsyncClient(base_url=url, timeout=300) as client:
            live = SimpleNamespace(url=url, settings=settings, emulator=SimpleNamespace(url=emulator.url, ca_cert_path=ca))
            onboarding = BigOnboarding(client, live, organisation, receiver, tenant)
            await onboarding.register()
            await onboarding.consent("GET_USER_SYNC_CONSENT")
            await onboarding.consent("GET_PRESENCE_CONSENT")
            token = onboarding.token
            ent = await client.post("/oauth/token", auth=(onboarding.credentials["clientID"], onboarding.credentials["clientSecret"]),
                                    data={"username": onboarding.credentials["entAdminUsername"],
                                          "password": onboarding.credentials["entAdminSecret"], "grant_type": "password"})
            msal = {"authenticationResult": onboarding.msal_object}
            sbc_id = (await client.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{onboarding.login.reseller_id}",
                                       headers=bearer(token))).json()[0]["sbcGatewayId"]
            route = (await client.post("/provisioning/provisionDirectRouting", headers=bearer(ent.json()["access_token"]),
                                       json=msal | {"sbcGatewayId": sbc_id})).json()["directRouteId"]
            located = await client.post("/pbx/configurePBX", headers=bearer(token), json={
                "enterpriseId": onboarding.enterprise_id, "pbxLocation": "Bench PBX", "pbxType": "BroadWorks",
                "canonicalPbxSIPDomain": "127.0.0.1", "proxyDomainPort": pbx.port, "regExpiresValue": 3600})
            assert located.status_code == 200, located.text
            upns = []
            with httpx.Client(base_url=emulator.url, verify=ca, timeout=60) as admin:
                graph_token = onboarding.msal_object["authenticationResult"]["accessToken"]
                next_url = "/v1.0/users?$top=999&$select=userPrincipalName"
                while next_url:
                    page = admin.get(next_url, headers=bearer(graph_token)).raise_for_status().json()
                    upns += [u["userPrincipalName"] for u in page["value"] if not u["userPrincipalName"].startswith("admin@")]
                    next_url = page.get("@odata.nextLink", "").replace(emulator.url, "") or None
            upns = sorted(upns)[: args.users + 1]
            numbers = [str(14139400000 + i) for i in range(len(upns))]
            tenant_id = tenant["tenantId"]

            async def configure(i: int, password: str) -> tuple[float, float]:
                started = time.time()
                response = await client.post("/enterprise/configureUser", headers=bearer(token), json=user_body(
                    tenant_id, upns[i], numbers[i], route, pbx_ids[i], password))
                assert response.status_code == 200, response.text
                return started, time.time()

            print(f"setup done in {root}; Kamailio reg_timer_interval 1 s")
            for label, password in (("1 user, created", "pw-one-b"), ("1 user, new password", f"pw-{pbx_ids[0]}-a")):
                if label.endswith("new password"):  # set at the PBX first (sipp restarts knowing it)
                    pbx.users[pbx_ids[0]] = password  # type: ignore[index]
                    pbx.restart(password)
                started, answered = await configure(0, password)
                register_at, ok_at = await asyncio.to_thread(wait, pbx, pbx_ids[0], password, started)
                print(f"{label:24s} API {1000 * (answered - started):7.1f} ms   REGISTER after {1000 * (register_at - started):7.1f} ms"
                      f"   200 OK after {1000 * ((ok_at or register_at) - started):7.1f} ms")

            limit = asyncio.Semaphore(args.concurrency)

            async def one(i: int) -> tuple[float, float]:
                async with limit:
                    return await configure(i, f"pw-{pbx_ids[i]}-a")

            first = time.time()
            calls = await asyncio.gather(*(one(i) for i in range(1, len(upns))))
            api_done = time.time()
            latencies, last = [], 0.0
            for i, (started, _answered) in zip(range(1, len(upns)), calls):
                register_at, ok_at = await asyncio.to_thread(wait, pbx, pbx_ids[i], f"pw-{pbx_ids[i]}-a", first, 120)
                latencies.append(register_at - started)
                last = max(last, ok_at or register_at)
            n = len(latencies)
            latencies.sort()
            print(f"{n} users at once        API calls done after {api_done - first:6.2f} s ({n / (api_done - first):.0f}/s, "
                  f"{args.concurrency} in flight)")
            print(f"{'':24s} last REGISTER 200 OK after {last - first:6.2f} s from the first call")
            print(f"{'':24s} per user, call start -> REGISTER: median {statistics.median(latencies):.2f} s, "
                  f"p95 {latencies[int(0.95 * (n - 1))]:.2f} s, max {latencies[-1]:.2f} s")
            from dbos import DBOS

            runs = await DBOS.list_workflows_async(name="sync_sbc", load_input=False, load_output=False)
            print(f"{'':24s} SBC syncs run in all: {len(runs)} (changes are coalesced)")
    finally:
        receiver.stop()
        server.stop()
        pbx.stop()
        kamailio.stop()
        emulator.stop()


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
