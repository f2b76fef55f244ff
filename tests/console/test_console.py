"""The provider console in a real browser (Playwright driving Debian's chromium; never a downloaded one):
sign in with either family's login, customers scoped to the reseller (pages and direct URLs), a number
assigned in the users grid reaches Teams (the emulator), a CSV with bad rows previewed, run and its results
downloaded. Screenshots of each page go to a temporary directory (TEAMSVOICE_SCREENSHOTS to choose one)."""

import csv
import io
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.fusion.support import BASE, PASSWORD, make_world
from tests.api.fusion.users_support import onboard
from tests.cli.support import webhook_deliveries
from tests.support.emulated import emulated_tenant

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed (pip install -e '.[test]')")
NO_CHROMIUM = ("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium); the console browser "
               "tests need it")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)


@pytest.fixture(scope="session")
def shots() -> Path:
    path = Path(os.environ.get("TEAMSVOICE_SCREENSHOTS") or tempfile.mkdtemp(prefix="teamsvoice-console-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[object]:
    """(Other modules' browser tests use this fixture: they are skipped the same way without chromium.)"""
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    async with playwright_api.async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
async def new_page(browser, live) -> AsyncIterator:  # type: ignore[no-untyped-def]
    contexts = []

    async def make(java_script: bool = True):  # type: ignore[no-untyped-def]
        context = await browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 800},
                                            java_script_enabled=java_script)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


def _microsoft_requests(tenant_id: str) -> float:
    """Requests teamsvoice sent Microsoft for the tenant (the budget scheduler's count: every service class and
    outcome; a `$batch` counts the requests inside it)."""
    from teamsvoice.core.metrics import REGISTRY

    return sum(REGISTRY.get_sample_value("teamsvoice_microsoft_budget_requests_total", {
        "service_class": service, "tenant": tenant_id.lower(), "outcome": outcome}) or 0.0
        for service in ("teams", "directory", "directory-write") for outcome in ("answered", "throttled", "unanswered"))


async def sign_in(page, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto("/console/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/customers")


async def test_sign_in_and_resellers_see_only_their_customers(new_page, client: httpx.AsyncClient, live, organisation,
                                                              shots: Path) -> None:
    world = await make_world(client, live, organisation)
    acme = await world.create_tenant("reseller", name="Acme Ltd")
    acme_sub = await world.create_subscription(acme["uuid"])
    globex = await world.create_tenant("other-reseller", name="Globex Corp")

    page = await new_page()
    not_found = []  # resources the pages asked for that this server does not have (a favicon was one, on every page)
    page.on("console", lambda message: not_found.append(message.location.get("url")) if "404" in message.text else None)
    await page.goto("/console/customers")  # not signed in: sent to the sign-in page, which sends it back after
    assert page.url.endswith("/console/login?next=%2Fconsole%2Fcustomers")
    await page.get_by_label("Username").fill(organisation.resellers[0].username)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_text("Invalid username or password").wait_for()
    await page.screenshot(path=shots / "sign-in.png")
    assert not_found == [], not_found

    # A ConnecttoTeams reseller admin of reseller 1 sees Acme, never Globex.
    await sign_in(page, organisation.resellers[0].username, organisation.resellers[0].password)
    table = page.get_by_role("table", name="Customers (Fusion tenants and subscriptions)")
    await table.get_by_text("Acme Ltd").wait_for()
    assert await table.get_by_text("Globex Corp").count() == 0
    await page.screenshot(path=shots / "customers.png", full_page=True)
    [cookie] = [c for c in await page.context.cookies() if c["name"] == "tv_console"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0

    # Create a customer from the page; it opens on its tenant page.
    await page.get_by_label("Customer name").fill("Initech")
    await page.get_by_role("button", name="Create").click()
    await page.get_by_role("heading", name="Initech · Teams calling").wait_for()
    await page.screenshot(path=shots / "tenant.png", full_page=True)
    await page.goto("/console/customers?q=init")
    await table.get_by_text("Initech").wait_for()
    assert await table.get_by_text("Acme Ltd").count() == 0
    # The live search keeps its words in the address: Back from a customer shows the list the box says.
    await page.get_by_label("Search customers").fill("Acme")
    await page.wait_for_url("**/console/customers?q=Acme")
    await table.get_by_role("row").filter(has_text="Acme Ltd").get_by_role("link").first.click()
    await page.wait_for_url("**/console/tenants/**")
    await page.go_back()
    await table.get_by_text("Acme Ltd").wait_for()
    assert await page.get_by_label("Search customers").input_value() == "Acme"
    assert await table.get_by_text("Initech").count() == 0

    # The other reseller's staff (a Fusion login) sees Globex only; Acme's pages answer "not found".
    other = await new_page()
    await sign_in(other, "other-reseller", PASSWORD)
    table = other.get_by_role("table", name="Customers (Fusion tenants and subscriptions)")
    await table.get_by_text("Globex Corp").wait_for()
    assert await table.get_by_text("Acme Ltd").count() == 0
    assert await table.get_by_text("Initech").count() == 0
    acme_base = f"/console/tenants/{acme['uuid']}/subscriptions/{acme_sub['id']}"
    for path in (acme_base, f"{acme_base}/users", f"{acme_base}/bulk", f"/console/tenants/{acme['uuid']}"):
        response = await other.goto(path)
        assert response is not None and response.status == 404, path
        assert "not found" in (await other.content()).lower()
    await other.screenshot(path=shots / "other-reseller-not-found.png")
    assert globex["uuid"]

    # A forged session cookie is no session.
    forged = await new_page()
    await forged.context.add_cookies([{**cookie, "value": cookie["value"][:-4] + "AAAA"}])
    await forged.goto("/console/customers")
    assert forged.url.endswith("/console/login?next=%2Fconsole%2Fcustomers")

    # A POST without the session's CSRF token is refused, even with the session cookie.
    refused = await other.request.post("/console/customers", form={"name": "Forged"})
    assert refused.status == 403
    signed_in = await other.request.get("/console/customers")
    assert "Forged" not in await signed_in.text()


async def test_assign_number_in_grid_and_bulk_csv(new_page, client: httpx.AsyncClient, live, organisation,
                                                  shots: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    onboarded = await onboard(client, live, organisation, count=20)
    users = [u["msTeams"] for u in await onboarded.users(12) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    base = "/console" + onboarded.path.removeprefix(BASE)
    page = await new_page()
    await sign_in(page, "reseller", PASSWORD)

    # Tenant page: onboarded, numbers counted, the readiness as last checked and the drift state as stored, and the
    # readiness checks and the plan (what apply would change in Teams) once asked for: viewing the page asks Microsoft
    # nothing (the drift card made a whole plan of the tenant at every view: 4 cmdlets, every userConfigurations page,
    # the disabled users; the readiness card 3 to 5 requests), Check now and Plan now do.
    tenant_id = onboarded.tenant["tenantId"]
    before = _microsoft_requests(tenant_id)
    await page.goto(base)
    assert await page.get_by_test_id("free-count").inner_text() == "20"
    assert await page.get_by_test_id("assigned-count").inner_text() == "0"
    plan_now = page.locator("#voice-state").get_by_role("button", name="Plan now")
    await plan_now.wait_for()
    await page.wait_for_load_state("networkidle")  # (whatever the page loads into itself has been asked for)
    assert _microsoft_requests(tenant_id) == before  # the page's view, with its cards, sends Microsoft no request
    readiness = page.locator("#readiness")
    assert (await readiness.get_by_test_id("readiness-checked").inner_text()).startswith("Not checked yet")
    assert await page.get_by_test_id("open-drift").inner_text() == "0"
    assert await page.get_by_test_id("plan-summary").count() == 0  # no plan until asked for
    card = await page.request.get(f"{base}/voice-state", headers={"HX-Request": "true"})
    assert card.status == 200 and 'data-testid="open-drift"' in await card.text(), await card.text()
    assert _microsoft_requests(tenant_id) == before  # the drift card's view sends Microsoft no request
    await readiness.get_by_role("button", name="Check now").click()
    await readiness.get_by_text("Last checked with Microsoft").wait_for(timeout=60_000)
    assert await readiness.get_by_text("Ready for direct routing").or_(readiness.get_by_text("Not ready yet")).count() == 1
    checked_at = await readiness.get_by_test_id("readiness-checked").inner_text()
    checked = _microsoft_requests(tenant_id)
    assert checked > before  # (the count sees the checks' requests)
    # The check is remembered with its time: the page shows it again, and its view still asks Microsoft nothing.
    await page.reload()
    assert await readiness.get_by_test_id("readiness-checked").inner_text() == checked_at
    await plan_now.wait_for()
    await page.wait_for_load_state("networkidle")
    assert _microsoft_requests(tenant_id) == checked
    await plan_now.click()
    await page.get_by_test_id("plan-summary").or_(page.get_by_text("The plan could not be made")).wait_for(timeout=60_000)
    assert await page.get_by_test_id("plan-summary").count() == 1, await page.locator("#voice-state").inner_text()
    assert _microsoft_requests(tenant_id) > checked  # (the count sees the plan's reads)
    routing = page.get_by_role("table", name="Direct routing configuration")
    assert await routing.get_by_role("row").filter(has_text="Voice routing policy").count() >= 1
    assert await routing.get_by_role("row").filter(has_text="SBC gateway").count() >= 1
    await page.screenshot(path=shots / "tenant.png", full_page=True)

    # Users grid: assign a free number through the picker; Teams (the emulator) has it.
    await page.goto(f"{base}/users")
    target, number = users[0], onboarded.numbers[0]
    row = page.locator(f"tr#u-{target['id']}")
    await row.get_by_role("button", name="Assign").click()  # no number picked: said in the alert region
    await page.locator("#flash").get_by_text("Number: pick a free number of this subscription").wait_for()
    await row.get_by_label(f"Number for {target['userPrincipalName']}").select_option(number)
    await row.get_by_role("button", name="Assign").click()
    await page.locator(f"tr#u-{target['id']} td.number", has_text=number).wait_for()
    assert await page.locator("#flash").inner_text() == ""  # the earlier error no longer stands (it stayed)
    await page.screenshot(path=shots / "users.png", full_page=True)
    assert number in await onboarded.teams_numbers(target["id"])
    # The same number cannot go to a second user: the refusal is shown in words.
    # Every other row's picker stops offering it at once (they kept it until a reload), and still offers the rest.
    second = page.locator(f"tr#u-{users[1]['id']}")
    picker = second.get_by_label(f"Number for {users[1]['userPrincipalName']}")
    assert await picker.locator(f"option[value='{number}']").count() == 0
    assert await picker.locator(f"option[value='{onboarded.numbers[1]}']").count() == 1
    # A policy set while Microsoft fails the read of the tenant's licences, made only to draw the row again: the change
    # is made, and the row shows it and says what it could not read (the change was answered as an error).
    from teamsvoice.core.errors import UpstreamError
    from teamsvoice.microsoft.directory import DirectoryAdmin
    subscribed_skus = DirectoryAdmin.subscribed_skus

    async def skus_unread(self, *, refresh: bool = True):  # type: ignore[no-untyped-def]
        if refresh:  # (the change's own licence checks read them as last read: refresh=False)
            raise UpstreamError("gave up after 6 attempts: Microsoft Graph GET /v1.0/subscribedSkus failed (503)",
                                retryable=True, status=503)
        return await subscribed_skus(self, refresh=refresh)

    monkeypatch.setattr(DirectoryAdmin, "subscribed_skus", skus_unread)
    try:
        await row.get_by_label(f"Policy for {target['userPrincipalName']}").fill("teamsvoice")
        await row.get_by_role("button", name="Set policy").click()
        await page.locator(f"tr#u-{target['id']} td.policy", has_text="teamsvoice").wait_for()
    finally:
        monkeypatch.undo()
    assert "Licences not shown: Microsoft did not answer" in await page.locator(f"tr#u-{target['id']}").inner_text()
    assert await page.locator("#flash").inner_text() == ""
    # Paging: past the first page, a link leads back to it (there was only "Next page").
    from teamsvoice.console import pages
    monkeypatch.setattr(pages, "GRID_PAGE", 5)
    await page.goto(f"{base}/users")
    assert await page.get_by_role("link", name="First page").count() == 0
    await page.get_by_role("link", name="Next page").click()
    await page.get_by_role("link", name="First page").click()
    await page.locator(f"tr#u-{target['id']}").wait_for()
    assert await page.get_by_role("link", name="First page").count() == 0
    monkeypatch.undo()

    # Bulk CSV: 8 good rows, 3 bad ones (a bad upn, a number from no inventory, a number already assigned).
    rows = [f"{u['userPrincipalName']},{onboarded.numbers[i + 1]},,BE" for i, u in enumerate(users[1:9])]
    rows += ["not-an-upn,,,BE", f"{users[9]['userPrincipalName']},+3225550199,,", f"{users[10]['userPrincipalName']},{number},,"]
    text = "upn,number,vrp,country\n" + "\n".join(rows) + "\n"
    await page.goto(f"{base}/bulk")
    await page.get_by_label("CSV file").set_input_files(files=[{"name": "users.csv", "mimeType": "text/csv",
                                                                 "buffer": text.encode()}])
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("heading", name="Preview: 8 row(s) ready, 3 with errors").wait_for()
    assert await page.get_by_text("a user principal name (name@domain) is required").count() == 1
    assert await page.get_by_text("is not a number of this subscription").count() == 1
    assert await page.get_by_text(f"{number} is already assigned to {target['userPrincipalName']}").count() == 1
    await page.screenshot(path=shots / "bulk-preview.png", full_page=True)
    # A double click runs one job (it ran two).
    await page.get_by_role("button", name="Run 8 row(s) (rows with errors are left out)").dblclick()
    await page.wait_for_url("**/jobs/*")
    await page.get_by_test_id("job-status").filter(has_text="success").wait_for(timeout=60_000)
    await page.screenshot(path=shots / "job.png", full_page=True)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download results (CSV)").click()
    download = await download_info.value
    results = list(csv.DictReader(io.StringIO(Path(await download.path()).read_text())))
    assert [r["status"] for r in results] == ["success"] * 8
    assert onboarded.numbers[1] in await onboarded.teams_numbers(users[1]["id"])

    await page.goto("/console/jobs")
    await page.get_by_role("table", name="Bulk jobs of all customers").get_by_text("Console CSV import").wait_for()
    assert await page.get_by_role("table", name="Bulk jobs of all customers").get_by_text("Console CSV import").count() == 1
    other = page.get_by_role("table", name="Webhooks, onboarding, syncs, resource accounts and applies")
    assert await other.get_by_role("cell", name="onboarding wizard").count() >= 1  # the wizard run of the onboarding
    await page.screenshot(path=shots / "jobs.png", full_page=True)


async def test_bulk_200_rows_jobs_retry_and_audit(new_page, client: httpx.AsyncClient, live, organisation, shots: Path) -> None:
    """A 200-row CSV with 3 bad rows: preview, run, finish, results; a failed job retried from the Jobs page;
    the audit entries of all of it, scoped: the other reseller's staff sees none (page, CSV and direct URL)."""
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant("reseller", name="Bulk Two Hundred")
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    microsoft = await emulated_tenant(live, "bulk200.example.com", 205)
    await world.onboard(path, microsoft)
    headers = await world.as_("reseller")
    start = 23000000 + random.randrange(0, 6_000_000 // 1000) * 1000
    added = await client.post(f"{path}/numbers", headers=headers, json={"countryCode": "+32", "ranges": [[start, start + 199]]})
    assert added.status_code == 200, added.text
    numbers = [f"+32{start + i}" for i in range(200)]
    listed = await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 250})
    users = sorted(u["msTeams"]["userPrincipalName"] for u in listed.json()["users"]
                   if not u["msTeams"]["userPrincipalName"].startswith("admin@"))
    assert len(users) >= 198

    # 197 good rows and 3 bad ones: a bad upn, a number from no inventory, a number twice. The good rows give
    # a number to some users and a voice routing policy to the others (a policy is one Microsoft call).
    rows = [f"{upn},{numbers[i]},,BE" if i < 20 else f"{upn},,teamsvoice," for i, upn in enumerate(users[:197])]
    rows.insert(50, "not-an-upn,,,BE")
    rows.insert(120, f"{users[197]},+3225550199,,")
    rows.append(f"{users[197]},{numbers[0]},,")
    assert len(rows) == 200
    text = "upn,number,vrp,country\n" + "\n".join(rows) + "\n"
    base = "/console" + path.removeprefix(BASE)
    page = await new_page()
    await sign_in(page, "reseller", PASSWORD)
    await page.goto(f"{base}/bulk")
    await page.get_by_label("CSV file").set_input_files(files=[{"name": "users.csv", "mimeType": "text/csv", "buffer": text.encode()}])
    await page.get_by_role("button", name="Preview").click()
    await page.get_by_role("heading", name="Preview: 197 row(s) ready, 3 with errors").wait_for()
    assert await page.get_by_text("a user principal name (name@domain) is required").count() == 1
    assert await page.get_by_text("is not a number of this subscription").count() == 1
    assert await page.get_by_text(f"{numbers[0]} is already on line").count() == 1
    await page.screenshot(path=shots / "bulk-200-preview.png")
    await page.get_by_role("button", name="Run 197 row(s) (rows with errors are left out)").click()
    await page.wait_for_url("**/jobs/*")
    job_url = page.url
    await page.get_by_test_id("job-status").filter(has_text="success").wait_for(timeout=180_000)
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download results (CSV)").click()
    results = list(csv.DictReader(io.StringIO(Path(await (await download_info.value).path()).read_text())))
    assert [r["status"] for r in results] == ["success"] * 197
    # The job page shows its items a hundred at a time (a 5,000-item job sent 674 KB at every poll).
    assert await page.get_by_role("table", name="Job items").get_by_role("row").count() == 101  # with the header
    assert "Items 1–100 of 197" in await page.get_by_test_id("job-items-range").inner_text()
    await page.get_by_role("link", name="Next items").click()
    await page.get_by_test_id("job-items-range").filter(has_text="Items 101–197 of 197").wait_for()
    assert await page.get_by_role("table", name="Job items").get_by_role("row").count() == 98
    await page.goto(job_url)
    assert await page.get_by_role("button", name="Retry failed and cancelled items").count() == 0  # nothing failed

    # A job that fails at run time (a user Microsoft does not have) is retried from the Jobs page: its item is
    # tried again (attempts 1 -> 2) and its last error shown.
    ghost = f"ghost@{microsoft['domain']}"
    failed = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Ghost import", "data": [
        {"upn": ghost, "displayName": "Ghost", "number": numbers[199]}]})
    assert failed.status_code == 400, failed.text
    await page.goto("/console/jobs")
    jobs_table = page.get_by_role("table", name="Bulk jobs of all customers")
    await jobs_table.get_by_role("button", name="Retry Ghost import").click()
    await page.wait_for_url("**/console/jobs")
    ghost_link = jobs_table.get_by_role("link", name="Ghost import")
    await ghost_link.click()
    items = page.get_by_role("table", name="Job items")
    await page.get_by_test_id("job-status").filter(has_text="error").wait_for(timeout=60_000)
    await items.get_by_role("row", name=ghost).get_by_role("cell", name="2", exact=True).wait_for()
    assert "does not exist" in await items.get_by_role("row", name=ghost).inner_text()
    await page.screenshot(path=shots / "job-retried.png", full_page=True)

    # The audit log shows who did all this: the console login ran the import and the retry; the bulk job
    # changed the Teams users on its behalf.
    await page.goto("/console/audit?action=bulk_job&tenant=Bulk+Two")
    audit_table = page.get_by_role("table", name="Audit entries")
    created = audit_table.get_by_role("row").filter(has_text="bulk_job.create").filter(has_text="Console CSV import")
    await created.first.wait_for()
    assert "fusion:reseller" in await created.first.inner_text()
    assert "POST /console/tenants/{uuid}/subscriptions/{sub_id}/bulk/run" in await created.first.inner_text()
    retried = audit_table.get_by_role("row").filter(has_text="bulk_job.update").filter(has_text="Ghost import").filter(
        has_text="/jobs/{job_id}/retry")
    assert await retried.count() == 1 and "error → queued" in await retried.inner_text()
    await page.goto("/console/audit?action=teams_user&tenant=Bulk+Two")
    assert "197 entries" in await page.get_by_test_id("audit-total").inner_text() or \
        int((await page.get_by_test_id("audit-total").inner_text()).split()[0]) >= 197
    first_user = audit_table.get_by_role("row").nth(1)
    assert "on behalf of console fusion:reseller" in await first_user.inner_text()
    await page.screenshot(path=shots / "audit.png")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Export as CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(await (await download_info.value).path()).read_text())))
    assert len(exported) >= 197 and all(r["action"].startswith("teams_user") for r in exported)
    assert any(numbers[1] in r["after"] for r in exported)
    entry_url = await audit_table.get_by_role("row").nth(1).get_by_role("link").first.get_attribute("href")  # its time
    await page.goto(entry_url)
    await page.get_by_role("table", name="Changes").wait_for()

    # The other reseller's staff sees none of these entries: not in its log, not in its CSV, not by URL.
    other = await new_page()
    await sign_in(other, "other-reseller", PASSWORD)
    await other.goto("/console/audit?tenant=Bulk+Two")
    assert (await other.get_by_test_id("audit-total").inner_text()).startswith("0 entries")
    await other.goto("/console/audit")
    assert await other.get_by_text("Bulk Two Hundred").count() == 0
    exported_other = await other.request.get("/console/audit.csv")
    assert exported_other.status == 200 and "Bulk Two Hundred" not in await exported_other.text()
    response = await other.goto(entry_url)
    assert response is not None and response.status == 404
    response = await other.goto(job_url)
    assert response is not None and response.status == 404


async def test_jobs_page_retries_and_cancels_a_webhook_delivery(new_page, live, organisation, receiver, shots: Path) -> None:
    """The Jobs page acts on jobs other than bulk ones: a refused webhook delivery is retried (the job engine
    delivers it), a pending one cancelled; a delivered one offers no button. Another reseller's staff cannot
    act on them, even by direct URL."""
    name = f"Hooked {random.randrange(10**6)}"
    refused_id, pending_id = await webhook_deliveries(live, organisation.resellers[0].reseller_id, receiver, name)
    page = await new_page()
    await sign_in(page, organisation.resellers[0].username, organisation.resellers[0].password)
    await page.goto("/console/jobs")
    refused, pending = page.locator(f"#job-webhook-{refused_id}"), page.locator(f"#job-webhook-{pending_id}")
    assert "HTTP 302: redirects are not followed" in await refused.inner_text()
    assert await refused.get_by_role("button", name=f"Cancel webhook delivery webhook:{refused_id}").count() == 0
    await page.screenshot(path=shots / "jobs-other-kinds.png", full_page=True)

    await pending.get_by_role("button", name=f"Cancel webhook delivery webhook:{pending_id}").click()
    await page.wait_for_url("**/console/jobs")
    assert await pending.get_by_test_id("status").inner_text() == "cancelled"
    await pending.get_by_role("button", name=f"Retry webhook delivery webhook:{pending_id}").wait_for()

    await refused.get_by_role("button", name=f"Retry webhook delivery webhook:{refused_id}").click()
    await page.wait_for_url("**/console/jobs")
    deadline = time.monotonic() + 60  # the delivery is recorded just after the receiver answers
    while time.monotonic() < deadline:
        await page.goto("/console/jobs")
        if await refused.get_by_test_id("status").inner_text() == "delivered":
            break
        await page.wait_for_timeout(200)
    assert await refused.get_by_test_id("status").inner_text() == "delivered"
    assert [r for r in receiver.received if r["path"] == "/hook" and r["body"] == {"enterpriseName": name}]
    assert await refused.get_by_role("button").count() == 0  # delivered: nothing to retry or cancel
    await page.screenshot(path=shots / "jobs-webhook-retried.png", full_page=True)

    other = await new_page()
    await sign_in(other, organisation.resellers[1].username, organisation.resellers[1].password)
    await other.goto("/console/jobs")
    assert await other.locator(f"#job-webhook-{pending_id}").count() == 0
    csrf = await other.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = await other.request.post(f"/console/jobs/webhook/{pending_id}/retry", form={"csrf_token": csrf or ""})
    assert forged.status == 404
