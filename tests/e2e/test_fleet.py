"""The scaled topology on one PostgreSQL: one `teamsvoice api` and two `teamsvoice worker` processes (and
`teamsvoice emulator`) share a 300-user bulk job. Both workers do items; one is SIGKILLed mid-job and the
other finishes its share without a manual step; each user ends with the requested number, assigned once;
the per-tenant concurrency Microsoft sees never exceeds the configured limit across both workers."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from teamsvoice.core.db import sync_url
from tests.e2e.test_serve import Served
from tests.support.fusion_bulk import prepare_bulk

pytestmark = pytest.mark.long
USERS = 300
LIMIT = 4


class Fleet:
    def __init__(self, root: Path, database_url: str, emulator_port: int, api_port: int) -> None:
        self.root, self.data_dir = root, root / "data"
        registration = json.loads((self.data_dir / "microsoft-app.json").read_text())
        emulator = f"https://127.0.0.1:{emulator_port}"
        self.api_url, self.emulator_url, self.emulator_port, self.api_port = f"http://127.0.0.1:{api_port}", emulator, emulator_port, api_port
        self.ca = str(self.data_dir / "m365-emulator" / "emulator-ca.pem")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMSVOICE_")} | {
            "TEAMSVOICE_DATABASE_URL": database_url, "TEAMSVOICE_PUBLIC_URL": self.api_url,
            "TEAMSVOICE_MICROSOFT_LOGIN_URL": emulator, "TEAMSVOICE_MICROSOFT_GRAPH_URL": f"{emulator}/v1.0",
            "TEAMSVOICE_MICROSOFT_POWERSHELL_URL": f"{emulator}/_powershell/invoke", "TEAMSVOICE_MICROSOFT_CA_BUNDLE": self.ca,
            "TEAMSVOICE_MICROSOFT_CLIENT_ID": registration["clientId"],
            "TEAMSVOICE_MICROSOFT_CLIENT_SECRET": registration["clientSecret"],
            "TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY": str(LIMIT), "TEAMSVOICE_JOB_EXECUTOR_TIMEOUT_SECONDS": "3",
        }
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen([sys.executable, "-m", "teamsvoice", *args, "--data-dir",
                                    str(self.data_dir / "m365-emulator" if args[0] == "emulator" else self.data_dir)],
                                   env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[name] = process
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in self.root.glob("*.log"))

    def wait_ready(self, url: str, **kwargs: object) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                assert process.poll() is None, (name, self.logs())
            try:
                if httpx.get(url, timeout=1, **kwargs).status_code < 500:  # type: ignore[arg-type]
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"{url} did not come up\n{self.logs()}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def fleet(tmp_path: Path, postgres) -> Fleet:  # type: ignore[no-untyped-def]
    if "postgresql" not in os.environ.get("TEAMSVOICE_TEST_BACKENDS", "sqlite,postgresql").split(","):
        pytest.skip("postgresql not selected by TEAMSVOICE_TEST_BACKENDS")
    url = postgres.create_database(f"fleet_{os.getpid()}_{int(time.time())}")
    # `serve` once on this database: migrations, demo organisation, Fusion logins and emulated tenants.
    seeded = Served(tmp_path / "data", {"TEAMSVOICE_DATABASE_URL": url}).start()
    seeded.stop(signal.SIGINT)
    fleet = Fleet(tmp_path, url, seeded.emulator_port, seeded.port)
    yield fleet
    fleet.stop()


def _item_executors(database_url: str) -> dict[str, int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE name = 'fusion_bulk_item' GROUP BY executor_id"))
            return {row[0]: row[1] for row in rows}
    finally:
        engine.dispose()


async def test_two_workers_share_a_job_and_survive_the_loss_of_one(fleet: Fleet) -> None:
    fleet.start("emulator", "emulator", "--port", str(fleet.emulator_port))
    fleet.wait_ready(f"{fleet.emulator_url}/_admin/faults", verify=fleet.ca)
    fleet.start("api", "api", "--port", str(fleet.api_port))
    first, _second = fleet.start("worker-1", "worker"), fleet.start("worker-2", "worker")
    fleet.wait_ready(f"{fleet.api_url}/health")
    creds = json.loads((fleet.data_dir / "demo-credentials.json").read_text())
    async with httpx.AsyncClient(base_url=fleet.api_url, timeout=300) as http:
        setup = await prepare_bulk(http, creds, USERS, first_number=25500000)
        async with httpx.AsyncClient(verify=fleet.ca) as admin:  # latency; also restarts the concurrency record
            assert (await admin.put(f"{fleet.emulator_url}/_admin/faults", json={"latencyMs": 40})).status_code == 200
        accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                                  json=setup.body("fleet"))
        assert accepted.status_code == 202, accepted.text
        job = f"{setup.path}/msteams/users/bulk/{accepted.json()['id']}"
        deadline = time.monotonic() + 120
        while (details := (await http.get(job, headers=setup.headers)).json())["success_count"] < USERS // 4:
            assert time.monotonic() < deadline and details["status"] in ("queued", "running"), (details["status"], fleet.logs())
            await asyncio.sleep(0.1)
        first.send_signal(signal.SIGKILL)  # mid-job: its items in flight are recovered by the other worker
        first.wait()
        deadline = time.monotonic() + 240
        while (details := (await http.get(job, headers=setup.headers)).json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, (details["success_count"], fleet.logs())
            await asyncio.sleep(0.5)
    assert details["status"] == "success", [i for i in details["job_items"] if i["status"] != "success"][:3]
    assert details["success_count"] == USERS and details["error_count"] == 0
    executors = _item_executors(fleet.env["TEAMSVOICE_DATABASE_URL"])
    assert len(executors) >= 2 and all(count > 0 for count in executors.values()), executors
    async with httpx.AsyncClient(verify=fleet.ca) as admin:
        voice = (await admin.get(f"{fleet.emulator_url}/_admin/tenants/{setup.tenant_id}/voice")).json()
        seen = (await admin.get(f"{fleet.emulator_url}/_admin/faults")).json()["concurrency"]
    holders = {n["telephoneNumber"]: n["assignmentTargetId"] for n in voice["numbers"]}
    for user, item in zip(setup.users, setup.body("fleet")["data"]):
        assert holders.get(item["number"]) == user["id"], item
        assert voice["assignmentRequests"][item["number"]] == 1, item
    assert 1 <= seen[setup.tenant_id]["max"] <= LIMIT, seen
