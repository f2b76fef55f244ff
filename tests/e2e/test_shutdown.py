"""Ctrl-C on `teamsvoice serve` in the middle of a bulk job: a clean exit within 10 s (no traceback),
nothing recorded as failed, and after a restart the job completes with every item applied once."""

import asyncio
import signal
import time

import httpx

from tests.e2e.test_serve import STOP_SECONDS, Served, database_env, served  # noqa: F401  (fixtures)
from tests.support.fusion_bulk import fusion_login, prepare_bulk

N = 20


async def test_sigint_mid_job_exits_cleanly_and_the_job_completes_after_restart(served: Served) -> None:  # noqa: F811
    served.start()
    creds = served.credentials()
    ca, emulator = creds["microsoft"]["caCertificate"], creds["microsoft"]["loginUrl"]
    reseller = next(login for login in creds["fusion"]["logins"] if login["level"] == "reseller")
    async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
        setup = await prepare_bulk(http, creds, N, first_number=24400000)
        async with httpx.AsyncClient(verify=ca) as admin:  # Microsoft answers slowly: the stop lands mid-call
            assert (await admin.put(f"{emulator}/_admin/faults", json={"latencyMs": 2500})).status_code == 200
        accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                                  json=setup.body("sigint"))
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        await asyncio.sleep(3)
    assert served.process is not None
    started = time.monotonic()
    served.process.send_signal(signal.SIGINT)
    code = served.process.wait(timeout=30)
    took = time.monotonic() - started
    log = (served.data_dir.parent / "serve.log").read_text(errors="replace")
    assert code == 0 and took < STOP_SECONDS, (code, took, log[-3000:])
    assert "Traceback" not in log and "DBOSException" not in log, log[-3000:]

    served.start()  # the emulator starts again without the latency (faults are not persisted)
    async with httpx.AsyncClient(base_url=served.url, timeout=120) as http:
        headers = await fusion_login(http, reseller)
        deadline = time.monotonic() + 120
        while True:
            details = (await http.get(f"{setup.path}/msteams/users/bulk/{job_id}", headers=headers)).json()
            if details["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
    assert details["status"] == "success", [(i["upn"], i["status"], i.get("error"), i.get("attempts"))
                                            for i in details["job_items"] if i["status"] != "success"][:3]
    assert details["success_count"] == N and details["error_count"] == 0
    async with httpx.AsyncClient(verify=ca) as admin:
        voice = (await admin.get(f"{emulator}/_admin/tenants/{setup.tenant_id}/voice")).json()
    wanted = {item["number"] for item in setup.body("sigint")["data"]}
    assert {n: c for n, c in voice["assignmentRequests"].items() if n in wanted} == dict.fromkeys(wanted, 1)
