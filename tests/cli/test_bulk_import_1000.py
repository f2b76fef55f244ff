"""`teamsvoice bulk import` of a 1,000-row CSV. `--dry-run` lists each refused row with its line and records
nothing; the real import runs as one job in the live server's job engine (items concurrently, per Microsoft
tenant) until it ends, and writes a results file with one line per row.

The real import of 1,000 users costs about a minute of CPU on the development machine (the job engine's
bookkeeping per item, on one in-process server and emulator): it is marked `long`, as the fleet scenarios are."""

import csv
import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.api.fusion.support import BASE, make_world
from tests.cli.support import teamsvoice, teamsvoice_process

ROWS = 1000
NUMBERED = 20
PASSWORD = "Import-Passw0rd!"
# The CLI's whole import may take this long: alone about 30 s; beside the rest of the suite on 2 busy cores, where
# its items compete for the CPU with three other workers, a CI run took more than 300 s (the suite's default).
IMPORT_SECONDS = 600


def _write(file: Path, rows: list[list[str]]) -> Path:
    with file.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["upn", "number", "vrp", "country"])
        writer.writerows(rows)
    return file


async def _subscription(client: httpx.AsyncClient, live, organisation, domain: str | None) -> tuple[str, int, dict, int]:  # type: ignore[no-untyped-def]
    """A subscription with ROWS free numbers; onboarded to a new emulated tenant on `domain` when given."""
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant(name="Import Co")
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    if domain is not None:
        await world.onboard(path, {"globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}})
    headers = await world.as_("reseller")
    first = 26000000 + uuid.uuid4().int % 900 * 1000  # fresh numbers: the emulator keeps its tenants' numbers
    added = await client.post(f"{path}/numbers", headers=headers, json={"countryCode": "+32", "ranges": [[first, first + ROWS - 1]]})
    assert added.status_code == 200, added.text
    return path, subscription["id"], headers, first


async def test_dry_run_of_a_thousand_rows_lists_each_refused_row(client: httpx.AsyncClient, live, organisation,
                                                                  tmp_path: Path) -> None:
    _, subscription, _, first = await _subscription(client, live, organisation, None)
    rows = [[f"user{i:04d}@import.example", f"+32{first + i}", "", "BE"] for i in range(ROWS)]
    rows[10][0] = "not-a-upn"  # line 12
    rows[500][1] = "+3299"  # line 502: not a number of this subscription
    rows[999][1] = rows[998][1]  # line 1001: the number of line 1000 again
    bad_csv = _write(tmp_path / "bad.csv", rows)

    checked = await teamsvoice(live, "bulk", "import", str(bad_csv), "--subscription", str(subscription), "--dry-run", "--json")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    assert report["dryRun"] and report["rows"] == ROWS and report["valid"] == ROWS - 3
    assert [e["line"] for e in report["errors"]] == [12, 502, 1001]
    assert "upn" in report["errors"][0]["errors"][0] and "number" in report["errors"][1]["errors"][0]
    assert "already on line 1000" in report["errors"][2]["errors"][0]
    results = tmp_path / "checked.csv"
    human = await teamsvoice(live, "bulk", "import", str(bad_csv), "--subscription", str(subscription), "--dry-run",
                             "--results", str(results))
    assert human.returncode == 1 and "line 502 (" in human.stdout and f"{ROWS - 3} of {ROWS} rows are valid" in human.stdout
    with results.open() as written:
        lines = list(csv.DictReader(written))
    assert len(lines) == ROWS and [line["line"] for line in lines if line["status"] == "error"] == ["12", "502", "1001"]
    assert json.loads((await teamsvoice(live, "jobs", "list", "--kind", "bulk", "--json")).stdout) == []  # nothing was recorded

    good = _write(tmp_path / "good.csv", [r for i, r in enumerate(rows) if i not in (10, 500, 999)])
    valid = await teamsvoice(live, "bulk", "import", str(good), "--subscription", str(subscription), "--dry-run", "--json")
    assert valid.returncode == 0 and json.loads(valid.stdout) == {"dryRun": True, "rows": ROWS - 3, "valid": ROWS - 3, "errors": []}


@pytest.mark.long
@pytest.mark.timeout(IMPORT_SECONDS + 60)  # the import's own limit, then the checks (not the suite's 300 s default)
async def test_import_of_a_thousand_rows_runs_to_the_end(client: httpx.AsyncClient, live, organisation, tmp_path: Path) -> None:
    domain = f"import{uuid.uuid4().hex[:6]}.example"
    async with httpx.AsyncClient(verify=str(live.emulator.ca_cert_path), timeout=300) as admin:
        created = await admin.post(f"{live.emulator.url}/_admin/tenants", json={
            "displayName": "Import Co", "domain": domain, "userCount": ROWS + 1,
            "globalAdmin": {"username": f"admin@{domain}", "password": PASSWORD}})
        assert created.status_code == 201, created.text
    path, subscription, headers, first = await _subscription(client, live, organisation, domain)
    page = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 999})).json()
    upns = [u["msTeams"]["userPrincipalName"] for u in page["users"]]
    while page.get("next"):
        page = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 999, "next": page["next"]})).json()
        upns += [u["msTeams"]["userPrincipalName"] for u in page["users"]]
    upns = sorted(u for u in upns if not u.startswith("admin@"))[:ROWS]
    assert len(upns) == ROWS
    # Every row moves its user to another country; the first NUMBERED rows also give the user its number.
    good = _write(tmp_path / "good.csv", [[upn, f"+32{first + i}" if i < NUMBERED else "", "", "NL"]
                                          for i, upn in enumerate(upns)])
    results = tmp_path / "results.csv"

    ran = teamsvoice_process(live, "bulk", "import", str(good), "--subscription", str(subscription), "--json",
                             "--results", str(results), "--name", "thousand", timeout=IMPORT_SECONDS)
    assert ran.returncode == 0, ran.stderr[-2000:] + ran.stdout[-2000:]
    job = json.loads(ran.stdout)
    assert job["status"] == "success" and job["success_count"] == ROWS and job["error_count"] == 0
    with results.open() as written:
        lines = list(csv.DictReader(written))
    assert [line["upn"] for line in lines] == upns and {line["status"] for line in lines} == {"success"}
    shown = json.loads((await teamsvoice(live, "jobs", "show", str(job["id"]), "--json")).stdout)
    # An item is tried again only when a step of ours failed transiently (e.g. SQLite locked past its busy timeout
    # on a loaded machine): that counts as an attempt; applying each item once across re-runs and crashes is
    # proven by tests/e2e/test_fusion_users.py's crash test.
    assert shown["processed_count"] == ROWS and all(i["attempts"] >= 1 for i in shown["job_items"])
    page = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 999})).json()
    seen = {u["msTeams"]["userPrincipalName"]: u for u in page["users"]}
    assert all(seen[upn]["msTeams"]["location"] == "NL" for upn in upns if upn in seen)
    assert all(seen[upn]["draas"]["phoneNumber"] == f"+32{first + i}" for i, upn in enumerate(upns[:NUMBERED]))
