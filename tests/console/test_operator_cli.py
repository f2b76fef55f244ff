"""The operator's CLI against the live server's database and job engine: `tenants list`, `bulk import` with
`--dry-run` (rows refused with their line) and for real (the live server's job engine runs the job; the
numbers reach Teams), `jobs list|show|cancel`, all with `--json`."""

import json
from pathlib import Path

import httpx

from tests.api.fusion.users_support import onboard
from tests.cli.support import teamsvoice, teamsvoice_process


async def test_tenants_bulk_import_and_jobs(client: httpx.AsyncClient, live, organisation, tmp_path: Path) -> None:
    onboarded = await onboard(client, live, organisation, count=12)
    users = [u["msTeams"] for u in await onboarded.users(12) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    sub_id = onboarded.path.rsplit("/", 1)[1]

    listed = await teamsvoice(live, "tenants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [customer] = [c for c in json.loads(listed.stdout) if str(c.get("subscriptionId")) == sub_id]
    assert customer["onboarding"] == "onboarded" and customer["numbers"] == {"total": 12, "free": 12, "assigned": 0}
    assert customer["msTenantId"] == onboarded.tenant["tenantId"]

    good = [f"{u['userPrincipalName']},{onboarded.numbers[i]},,BE" for i, u in enumerate(users[:6])]
    bad = tmp_path / "bad.csv"
    bad.write_text("upn,number,vrp,country\n" + "\n".join(good + ["nobody,,,BE", f"{users[6]['userPrincipalName']},+3225550199,,"]) + "\n")
    checked = await teamsvoice(live, "bulk", "import", str(bad), "--subscription", sub_id, "--dry-run", "--json")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    assert report["valid"] == 6 and [e["line"] for e in report["errors"]] == [8, 9]
    assert "not a number of this subscription" in report["errors"][1]["errors"][0]
    # A row with a cell more than the header names is refused (the cell was dropped and the row shown "ok"); empty
    # trailing cells (a spreadsheet's commas) are not. A quote left open would take the rest of the file into one
    # cell: the file is refused, naming the row. A header alone says there is nothing to run.
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("upn,number,vrp,country\n" + f"{users[0]['userPrincipalName']},,,BE,extra\n"
                      + f"{users[1]['userPrincipalName']},,,BE,,\n" + f"{users[0]['userPrincipalName']},,,BE\n")
    report = json.loads((await teamsvoice(live, "bulk", "import", str(ragged), "--subscription", sub_id, "--dry-run", "--json")).stdout)
    # (the user of a row left out is free for a later row: line 4 is not "already on line 2")
    assert report["valid"] == 2 and report["errors"] == [{"line": 2, "upn": users[0]["userPrincipalName"], "errors": [
        "the row has 1 cell(s) more than the header line names"]}], report
    for text, words in ((f'upn,number\n"{users[0]["userPrincipalName"]},,\n{users[1]["userPrincipalName"]},\n', "line 2"),
                        ("upn,number,vrp,country\n", "no rows after the header")):
        broken = tmp_path / "broken.csv"
        broken.write_text(text)
        refused = await teamsvoice(live, "bulk", "import", str(broken), "--subscription", sub_id, "--dry-run", "--json")
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr

    csv_file, results = tmp_path / "good.csv", tmp_path / "results.csv"
    csv_file.write_text("upn,number,vrp,country\n" + "\n".join(good) + "\n")
    dry = await teamsvoice(live, "bulk", "import", str(csv_file), "--subscription", sub_id, "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["valid"] == 6, dry.stderr
    assert not json.loads((await teamsvoice(live, "jobs", "list", "--kind", "bulk", "--json")).stdout)  # a dry run records nothing

    ran = teamsvoice_process(live, "bulk", "import", str(csv_file), "--subscription", sub_id, "--json", "--results", str(results))
    assert ran.returncode == 0, ran.stderr + ran.stdout
    job = json.loads(ran.stdout)
    assert job["status"] == "success" and job["success_count"] == 6
    assert results.read_text().count(",success,") == 6
    assert onboarded.numbers[0] in await onboarded.teams_numbers(users[0]["id"])

    jobs = json.loads((await teamsvoice(live, "jobs", "list", "--kind", "bulk", "--json")).stdout)
    assert [j["id"] for j in jobs] == [job["id"]]
    shown = await teamsvoice(live, "jobs", "show", str(job["id"]))
    assert shown.returncode == 0 and "success" in shown.stdout and users[0]["userPrincipalName"] in shown.stdout
    refused = await teamsvoice(live, "jobs", "cancel", str(job["id"]))
    assert refused.returncode == 2 and "already ended" in refused.stderr
    missing = await teamsvoice(live, "jobs", "show", "999999", "--json")
    assert missing.returncode == 2 and "not found" in missing.stderr
