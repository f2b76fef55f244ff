"""`teamsvoice serve` as a provider runs it: one command, seeded demo data, data kept across restarts,
and durable jobs that survive a crash (kill -9) of the whole process."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.consent import sign_in_and_consent
from tests.support.ctt import bearer, enterprise_body
from tests.support.postgres import free_port
from tests.support.receiver import WebhookReceiver

# How long a Ctrl-C may take to end `serve`: its grace for requests (5 s) and for the job engine's work in flight
# (5 s), then its teardown, on a machine the whole suite loads; a stop that hangs is what this bound catches.
STOP_SECONDS = 20.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param not in os.environ.get("TEAMSVOICE_TEST_BACKENDS", "sqlite,postgresql").split(","):
        pytest.skip(f"{request.param} not selected by TEAMSVOICE_TEST_BACKENDS")
    if request.param == "sqlite":
        return {}  # the embedded default
    url = request.getfixturevalue("postgres").create_database(f"serve_{uuid.uuid4().hex[:8]}")
    return {"TEAMSVOICE_DATABASE_URL": url}


class Served:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir, self.port, self.emulator_port = data_dir, free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_")} | env | {
            "TEAMSVOICE_WEBHOOK_RETRY_INITIAL_SECONDS": "0.2", "TEAMSVOICE_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
            # After a SIGKILL the restarted server takes over the killed one's work once its heartbeat is this old
            # (on SQLite at once: runtime.recover_dead_executors); the tests run one server at a time.
            "TEAMSVOICE_JOB_EXECUTOR_TIMEOUT_SECONDS": "3"}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Served":
        # Output goes to a file: a pipe nobody drains fills up and then blocks the server's logging.
        self.log = (self.data_dir.parent / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "teamsvoice", "serve", "--port", str(self.port), "--emulator-port", str(self.emulator_port),
             "--data-dir", str(self.data_dir)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.data_dir.parent / "serve.log").read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("teamsvoice serve did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=60)

    def credentials(self) -> dict:
        return json.loads((self.data_dir / "demo-credentials.json").read_text())


@pytest.fixture
def served(tmp_path: Path, database_env: dict[str, str]) -> Iterator[Served]:
    server = Served(tmp_path / "data", database_env)
    yield server
    if server.process and server.process.poll() is None:
        server.stop(signal.SIGKILL)


async def reseller_token(http: httpx.AsyncClient, login: dict) -> str:
    response = await http.post("/oauth/token", auth=(login["clientId"], login["clientSecret"]),
                               data={"username": login["username"], "password": login["password"], "grant_type": "password"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def check_fusion_entry(url: str, fusion: dict) -> None:
    """The `fusion` entry: onboarded subscriptions in different tenants with free numbers, a login per level."""
    subscriptions = fusion["subscriptions"]
    assert len(subscriptions) >= 2 and len({s["tenantUuid"] for s in subscriptions}) == len(subscriptions)
    assert len({s["msTenantId"] for s in subscriptions}) == len(subscriptions)
    levels = [login["level"] for login in fusion["logins"]]
    assert {"system", "distributor", "reseller", "tenant"} <= set(levels) and levels.count("tenant") >= len(subscriptions)
    base = f"/api/v01/draas/{fusion['draasInstance']}"
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for login in fusion["logins"]:
            answer = await http.post("/api/v01/auth/login", json={"username": login["username"], "password": login["password"]})
            assert answer.status_code == 200, login
        for sub in subscriptions:
            login = next(lg for lg in fusion["logins"] if lg["level"] == "tenant" and lg.get("tenantUuid") == sub["tenantUuid"])
            token = (await http.post("/api/v01/auth/login", json={"username": login["username"], "password": login["password"]})).json()
            headers = bearer(token["access_token"])
            path = f"{base}/tenants/{sub['tenantUuid']}/subscriptions/{sub['subscriptionId']}"
            status = (await http.get(f"{path}/msteams/status", headers=headers)).json()
            assert status["status"] == "onboarded" and status["msTenantId"] == sub["msTenantId"], status
            free = await http.get(f"{path}/free_numbers", headers=headers)
            assert free.status_code == 200 and free.json()["freeNumbers"], free.text


async def test_first_start_seeds_and_restart_keeps_everything(served: Served) -> None:
    served.start()
    creds = served.credentials()
    assert creds["apiUrl"] == served.url and len(creds["resellers"]) >= 2 and len(creds["microsoft"]["tenants"]) >= 2
    ca = creds["microsoft"]["caCertificate"]
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        master = await reseller_token(http, creds["masterReseller"])
        children = (await http.get(f"/reseller/getResellers/{creds['masterReseller']['resellerId']}", headers=bearer(master))).json()
        assert sorted(r["resellerId"] for r in children) == sorted(r["resellerId"] for r in creds["resellers"])
        login = creds["resellers"][0]
        token = await reseller_token(http, login)
        sbc = (await http.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{login['resellerId']}", headers=bearer(token))).json()
        pbx = (await http.get("/pbx/getPBXTypesByResellerId", params={"resellerId": login["resellerId"]}, headers=bearer(token))).json()
        assert sbc and pbx
        created = await http.post("/reseller/newEnterprise", headers=bearer(token), json=enterprise_body(
            login["resellerId"], "Survives Restarts", pbx=[pbx[0]["id"]], sbc=[sbc[0]["sbcGatewayId"]]))
        assert created.status_code == 200
    async with httpx.AsyncClient(verify=ca, timeout=30) as admin:
        for tenant in creds["microsoft"]["tenants"]:
            summary = json.dumps((await admin.get(f"{creds['microsoft']['loginUrl']}/_admin/tenants/{tenant['tenantId']}")).json())
            assert tenant["domain"] in summary
            # Like a real customer: Teams Phone and resource-account seats, an E3 estate, a named admin.
            for sku in ("MCOEV", "PHONESYSTEM_VIRTUALUSER", "ENTERPRISEPACK"):
                assert sku in summary
            assert tenant["globalAdmin"]["username"].endswith("@" + tenant["domain"]) and tenant["globalAdmin"]["password"]
    await check_fusion_entry(served.url, creds["fusion"])
    served.stop()
    # A clean stop logs no error (the emulator's HTTPS server used to wait for the sign-in service's kept-alive
    # connections and log "timeout graceful shutdown exceeded" at every stop).
    log = (served.data_dir.parent / "serve.log").read_text()
    assert "teamsvoice stopped" in log and not [line for line in log.splitlines() if " ERROR " in line], log[-3000:]

    served.start()
    assert served.credentials() == creds
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        token = await reseller_token(http, creds["resellers"][0])
        listed = (await http.get(f"/reseller/getEnterprisesForReseller/{creds['resellers'][0]['resellerId']}", headers=bearer(token))).json()
        assert [e["enterpriseName"] for e in listed] == ["Survives Restarts"]

    # Beside it, the commands that ask Microsoft themselves reach its emulator with no TEAMSVOICE_MICROSOFT_* setting:
    # `serve` records the emulator's address and its app registration in the data directory.
    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "teamsvoice", *args, "--data-dir", str(served.data_dir)],
                              env=served.env, capture_output=True, text=True, timeout=120)

    doctor = command("doctor", "--json")
    checks = {c["check"]: c for c in json.loads(doctor.stdout)["checks"]}
    linked = [s["msTenantId"] for s in creds["fusion"]["subscriptions"]]
    assert doctor.returncode == 0 and all(any(name.startswith(f"tenant {t}") and c["status"] == "ok"
                                              for name, c in checks.items()) for t in linked), doctor.stdout
    exported = command("users", "export", "--tenant", linked[0], "--json")
    assert exported.returncode == 0, exported.stderr
    assert any(u["userPrincipalName"].startswith("admin@") for u in json.loads(exported.stdout))
    plan = command("plan", linked[0], "--json")
    assert plan.returncode == 0 and json.loads(plan.stdout)["tenantId"] == linked[0], plan.stdout + plan.stderr

    # The emulator's access log goes on once the API has started (the API's uvicorn used to silence it); the API's
    # own requests are logged once, by teamsvoice.access.
    assert httpx.get(f"{creds['microsoft']['loginUrl']}/v1.0/organization", verify=ca, timeout=30).status_code == 401
    deadline = time.monotonic() + 10
    while '"GET /v1.0/organization HTTP/1.1" 401' not in (log := (served.data_dir.parent / "serve.log").read_text()):
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.1)
    assert not [line for line in log.splitlines() if "uvicorn.access" in line and "[emulator]" not in line]


async def test_webhook_survives_a_crash(served: Served) -> None:
    receiver = WebhookReceiver().start()
    receiver.fail_next = 10_000  # the provider is down
    try:
        served.start()
        creds = served.credentials()
        login, tenant = creds["resellers"][0], creds["microsoft"]["tenants"][1]
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
            token = await reseller_token(http, login)
            sbc = (await http.get(f"/reseller/getAvailableSBCGatewayRegionsByResellerId/{login['resellerId']}", headers=bearer(token))).json()
            pbx = (await http.get("/pbx/getPBXTypesByResellerId", params={"resellerId": login["resellerId"]}, headers=bearer(token))).json()
            await http.post("/reseller/newEnterprise", headers=bearer(token), json=enterprise_body(
                login["resellerId"], "Crash Test", pbx=[pbx[0]["id"]], sbc=[sbc[0]["sbcGatewayId"]]))
            url = (await http.post("/enterprise/getActionItemUrl", headers=bearer(token), json={
                "actionType": "REGISTRATION", "enterpriseName": "Crash Test", "redirectUrl": f"{receiver.url}/hook"})).text
        result = await sign_in_and_consent(url, tenant["globalAdmin"]["username"], tenant["globalAdmin"]["password"],
                                           creds["microsoft"]["caCertificate"])
        assert result.callback.status_code == 200
        deadline = time.monotonic() + 20
        while receiver.attempts < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.attempts >= 2 and not receiver.received
        served.stop(signal.SIGKILL)
        receiver.fail_next = 0  # the provider is back; teamsvoice is not running
        time.sleep(0.5)
        assert not receiver.received
        served.start()
        body = receiver.wait_for(1, timeout=30)[0]["body"]
        assert body["actionType"] == "REGISTRATION" and body["officeUserType"] == "GLOBAL_ADMIN"
        assert body["msalAuthenticationResult"]["authenticationResult"]["userInfo"]["tenantId"] == tenant["tenantId"]
        time.sleep(1)
        assert len(receiver.received) == 1  # delivered once, not once per process
    finally:
        receiver.stop()
