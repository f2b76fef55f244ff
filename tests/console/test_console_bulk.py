"""The console's bulk CSV at its documented size and after a refused file (found by a probe in a browser): a
10,000-row file could not be previewed and a 7,600-row one previewed (in 57 s) but could not be run (the body
limit of 1 MiB); a refused file left the previous file's preview and Run button on the page; without
JavaScript the preview was a bare fragment."""

import random
from pathlib import Path

import httpx

from tests.api.fusion.support import BASE, PASSWORD
from tests.api.fusion.users_support import onboard
from tests.console.test_console import browser, new_page, pytestmark, shots, sign_in  # noqa: F401  (fixtures; skip without chromium)


def _file(text: str) -> list[dict]:
    return [{"name": "users.csv", "mimeType": "text/csv", "buffer": text.encode()}]


async def test_ten_thousand_rows_preview_and_run_and_a_refused_file_clears_the_preview(
        new_page, client: httpx.AsyncClient, live, organisation, shots: Path) -> None:  # noqa: F811
    onboarded = await onboard(client, live, organisation)
    user = [u["msTeams"] for u in await onboarded.users(3)][1]
    base = "/console" + onboarded.path.removeprefix(BASE)
    page = await new_page()
    await sign_in(page, "reseller", PASSWORD)

    # 10,000 rows (the bulk limit): one ready, the others with numbers of no inventory. A 1.2 MB file.
    stray = random.randrange(10**6, 9 * 10**6)
    rows = [f"{user['userPrincipalName']},{onboarded.numbers[0]},,BE,{user['displayName']}"]
    rows += [f"user.{i:05d}@{onboarded.tenant['domain']},+3229{stray + i:07d},teamsvoice-national-and-international,BE,Imported User Number {i:05d} of the Sales department"
             for i in range(9_999)]
    text = "upn,number,vrp,country,displayName\n" + "\n".join(rows) + "\n"
    assert len(text) > 1024 * 1024
    await page.goto(f"{base}/bulk")
    await page.get_by_label("CSV file").set_input_files(files=_file(text))
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("heading", name="Preview: 1 row(s) ready, 9999 with errors").wait_for(timeout=60_000)
    assert await page.get_by_text("9799 more row(s) not listed").count() == 1
    assert await page.get_by_role("table").get_by_role("row").count() == 1 + 201  # header, 200 with errors, 1 ready

    # A refused file next: its error takes the preview's place (the first file's Run button is gone).
    await page.get_by_label("CSV file").set_input_files(files=_file("upn;number\na@b.example;+3222222222\n"))
    await page.get_by_role("button", name="Preview").click()
    await page.locator("#preview").get_by_text("the columns are separated by").wait_for()
    assert await page.get_by_role("button", name="Run 1 row(s) (rows with errors are left out)").count() == 0
    await page.screenshot(path=shots / "bulk-refused-after-preview.png", full_page=True)

    # The big file again, and run: the form carries its 1.2 MB back.
    await page.get_by_label("CSV file").set_input_files(files=_file(text))
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("button", name="Run 1 row(s) (rows with errors are left out)").click()
    await page.wait_for_url("**/jobs/*")
    await page.get_by_test_id("job-status").filter(has_text="success").wait_for(timeout=60_000)
    assert onboarded.numbers[0] in await onboarded.teams_numbers(user["id"])


async def test_bulk_csv_without_javascript(new_page, client: httpx.AsyncClient, live, organisation) -> None:  # noqa: F811
    onboarded = await onboard(client, live, organisation)
    user = [u["msTeams"] for u in await onboarded.users(3)][1]
    base = "/console" + onboarded.path.removeprefix(BASE)
    page = await new_page(java_script=False)
    await sign_in(page, "reseller", PASSWORD)
    await page.goto(f"{base}/bulk")
    await page.get_by_label("CSV file").set_input_files(files=_file(f"upn,number\n{user['userPrincipalName']},{onboarded.numbers[1]}\n"))
    await page.get_by_role("button", name="Preview").click()
    # A whole page: the tenant's navigation and the preview in it.
    await page.get_by_role("heading", name="Preview: 1 row(s) ready, 0 with errors").wait_for()
    assert await page.get_by_role("navigation", name="Tenant").count() == 1
    await page.get_by_role("button", name="Run 1 row(s)").click()
    await page.wait_for_url("**/jobs/*")
