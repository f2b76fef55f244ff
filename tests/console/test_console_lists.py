"""The console's lists over plain HTTP. The Jobs page listed every bulk job to any staff login, while the Fusion API
lists a subscription's bulk job history only to a login holding its role (the job's own page checked its role). The
Customers page stopped at 100 customers and the Jobs page at 500 customers and 50 jobs per subscription, saying
nothing: a provider with more never saw the rest. They now say how many there are and page to the rest. The other
jobs (wizard runs with their errors, resource accounts' and applies' jobs) showed to any staff login too, while the
APIs read each kind only with its role: now a login sees a kind only holding that role. The Customers page read its
rows a few statements per row (about 800 for a page of 100 customers): it sends as many however many rows it shows."""

import html
import re
import uuid
from typing import Any

import httpx

from tests.api.fusion.support import BASE, PASSWORD
from tests.support.browser import forms, submit
from tests.support.database import customer_records, in_session

MST = "tenants.instance.subscriptions.instance.msteams"
HISTORY_ROLE = f"{MST}.users.bulk.jobs"


async def _signed_in(browser: httpx.AsyncClient, username: str, password: str) -> None:
    form_page = await browser.get("/console/login")
    signed = await submit(browser, str(form_page.url), forms(form_page.text)[0], username=username, password=password)
    assert signed.status_code == 303, signed.text


def _next_link(text: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next"', text)
    return html.unescape(found.group(1)) if found else None


async def _customer(session: Any, reseller_id: int, name: str) -> tuple[str, int]:
    """A customer as the Fusion API makes one (a tenant, a subscription and its Direct Routing enterprise), as records
    only: answers (tenant uuid, subscription id)."""
    _enterprise_id, tenant_uuid, subscription_id = await customer_records(session, reseller_id, name,
                                                                          services=["DIRECT_ROUTING"])
    return tenant_uuid, subscription_id


def _ended_job(subscription_id: int, title: str) -> Any:
    """A bulk job that has ended (the job engine leaves it alone)."""
    from teamsvoice.domain.teams_users.models import FusionBulkJob

    return FusionBulkJob(job_id="1700000000", subscription_id=subscription_id, title=title, status="success",
                         total_count=1, success_count=1)


async def test_bulk_jobs_show_to_a_login_holding_the_apis_role_for_their_history(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    from teamsvoice.domain.fusion import tenants as fusion_tenants
    from teamsvoice.domain.fusion.roles import default_permissions

    staff = organisation.resellers[0]
    username = f"no-history-{uuid.uuid4().hex[:6]}"

    async def make(session: Any) -> tuple[str, int]:
        tenant_uuid, subscription_id = await _customer(session, staff.reseller_id, "History Co")
        session.add(_ended_job(subscription_id, "Moved the sales team"))
        await fusion_tenants.create_login(session, username=username, password=PASSWORD, level="reseller",
                                          reseller_id=staff.reseller_id,
                                          permissions=[p for p in default_permissions("reseller") if p != HISTORY_ROLE])
        return tenant_uuid, subscription_id

    tenant_uuid, subscription_id = await in_session(live, make)
    tenant_page = f"/console/tenants/{tenant_uuid}/subscriptions/{subscription_id}"
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        for path in ("/console/jobs", tenant_page):
            shown = await browser.get(path)
            assert shown.status_code == 200 and "Moved the sales team" in shown.text, (path, shown.text)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, username, PASSWORD)
        for path in ("/console/jobs", tenant_page):
            hidden = await browser.get(path)
            assert hidden.status_code == 200 and "Moved the sales team" not in hidden.text, (path, hidden.text)
            assert f"role {HISTORY_ROLE}" in hidden.text, (path, hidden.text)
        # The Fusion API's own answer to that login
        token = (await browser.post("/api/v01/auth/login", json={"username": username, "password": PASSWORD})).json()
        history = await browser.get(f"{BASE}/tenants/{tenant_uuid}/subscriptions/{subscription_id}/msteams/users/bulk",
                                    headers={"Authorization": f"Bearer {token['access_token']}"})
        assert history.status_code == 403, history.text


async def test_customers_past_the_first_page_are_counted_and_reached(  # type: ignore[no-untyped-def]
        live, organisation, monkeypatch) -> None:
    from teamsvoice.console import pages

    monkeypatch.setattr(pages, "CUSTOMERS_PAGE", 2)
    staff = organisation.resellers[0]
    names = [f"Paged customer {n}" for n in range(1, 6)]

    async def make(session: Any) -> None:
        for name in names:
            await _customer(session, staff.reseller_id, name)

    await in_session(live, make)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        seen: list[str] = []
        path: str | None = "/console/customers?q=Paged"
        while path is not None:
            listed = await browser.get(path)
            assert listed.status_code == 200, listed.text
            assert f"5 customers, page {len(seen) // 2 + 1} of 3" in listed.text, listed.text
            seen += re.findall(r"<td>(Paged customer \d)</td>", listed.text)
            path = _next_link(listed.text)
            assert path is None or "q=Paged" in path  # the search stays
        assert seen == names
        # The search's live results (htmx) say it too
        live_results = await browser.get("/console/customers?q=Paged", headers={"HX-Request": "true",
                                                                                 "HX-Target": "customer-results"})
        assert "5 customers, page 1 of 3" in live_results.text and _next_link(live_results.text)


async def test_jobs_past_the_first_page_are_counted_and_reached(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """51 jobs of one subscription: the page listed the newest 50 of each subscription and no more."""
    staff = organisation.resellers[0]

    async def make(session: Any) -> None:
        _tenant, subscription_id = await _customer(session, staff.reseller_id, "Busy Co")
        for n in range(1, 52):
            session.add(_ended_job(subscription_id, f"Job number {n:02d}"))
            await session.flush()  # (one at a time: their ids in order)

    await in_session(live, make)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        first = await browser.get("/console/jobs")
        assert first.status_code == 200 and "51 bulk jobs, page 1 of 2" in first.text, first.text
        shown = re.findall(r">Job number (\d\d)</a>", first.text)
        assert shown == [f"{n:02d}" for n in range(51, 1, -1)]  # newest first
        following = _next_link(first.text)
        assert following is not None
        second = await browser.get(following)
        assert "51 bulk jobs, page 2 of 2" in second.text and _next_link(second.text) is None
        assert re.findall(r">Job number (\d\d)</a>", second.text) == ["01"]


async def test_other_jobs_past_the_newest_of_their_kind_are_said_and_narrowed_to(  # type: ignore[no-untyped-def]
        live, organisation, monkeypatch) -> None:
    """The other jobs were the newest 100 of each kind, and nothing said there were more."""
    from teamsvoice.console import pages
    from teamsvoice.domain.consent.models import WebhookDelivery
    from teamsvoice.domain.orgs.models import Enterprise

    monkeypatch.setattr(pages, "OTHER_JOBS", 2)
    staff = organisation.resellers[0]

    async def make(session: Any) -> None:
        enterprise = Enterprise(reseller_id=staff.reseller_id, enterprise_name="Hooked Co")
        session.add(enterprise)
        await session.flush()
        for status, error in (("refused", "the redirectUrl answered 410"), ("delivered", None), ("delivered", None),
                              ("delivered", None)):
            session.add(WebhookDelivery(enterprise_id=enterprise.id, url="https://hooks.example/consent",
                                        payload_encrypted="x", status=status, attempts=1, last_error=error))
            await session.flush()

    await in_session(live, make)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)
        listed = await browser.get("/console/jobs")
        assert "the newest 2 of each kind are listed" in listed.text, listed.text
        assert "the redirectUrl answered 410" not in listed.text  # the oldest, past the newest two
        [narrow] = [f for f in forms(listed.text) if f.method == "get" and f.action == "/console/jobs"]
        narrowed = await submit(browser, str(listed.url), narrow, kind="webhook", status="refused")
        assert narrowed.status_code == 200 and "the redirectUrl answered 410" in narrowed.text, narrowed.text
        assert "of each kind are listed" not in narrowed.text
        refused = await browser.get("/console/jobs", params={"kind": "bulk"})  # bulk jobs have their own table
        assert refused.status_code == 400 and "kind: must be one of webhook" in refused.text, refused.text


async def test_other_jobs_show_a_kind_to_a_login_holding_the_role_the_api_reads_it_with(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """A wizard run (its error), a resource account's job and an apply, each hidden from a Fusion login lacking the
    role its API reads it with (the page says which), the others still shown; a ConnecttoTeams login sees them all."""
    from teamsvoice.domain.fusion import tenants as fusion_tenants
    from teamsvoice.domain.fusion.models import FusionWizardRun
    from teamsvoice.domain.fusion.roles import default_permissions
    from teamsvoice.domain.teams_users.models import FusionResourceAccount
    from teamsvoice.domain.voice_state.models import VoiceApplyJob

    staff = organisation.resellers[0]
    mark = uuid.uuid4().hex[:6]
    roles = {"wizard": f"{MST}.wizard.read", "resource-account": f"{MST}.resource_accounts.list",
             "voice-apply": f"{MST}.status.read"}
    labels = {"wizard": "onboarding wizard", "resource-account": "resource account", "voice-apply": "voice state apply"}
    errors = {kind: f"{kind} went wrong {mark}" for kind in roles}
    usernames = {kind: f"no-{kind}-{mark}" for kind in roles}
    no_sync = f"no-sync-{mark}"  # (reads applies, may not start one: teamsvoice's API asks its CHANGE_ROLE)
    consent_url = f"https://login.microsoftonline.com/consent-{mark}"  # (the wizard's step 1 answer, as the wizard's)

    async def make(session: Any) -> tuple[str, int, int]:
        enterprise_id, tenant_uuid, subscription_id = await customer_records(session, staff.reseller_id, "Kinds Co",
                                                                            services=["DIRECT_ROUTING"])
        apply = VoiceApplyJob(enterprise_id=enterprise_id, status="failed", error=errors["voice-apply"])
        session.add_all([
            FusionWizardRun(subscription_id=subscription_id, running=False, status="wizard_1_ERROR",
                            error=errors["wizard"], consent_url=consent_url),
            FusionResourceAccount(subscription_id=subscription_id, user_principal_name=f"cq@{mark}.example",
                                  display_name="Support queue", account_type="call-queue", location="BE",
                                  status="error", error=errors["resource-account"]), apply])
        for username, role in [*((usernames[kind], role) for kind, role in roles.items()), (no_sync, f"{MST}.sync")]:
            await fusion_tenants.create_login(session, username=username, password=PASSWORD, level="reseller",
                                              reseller_id=staff.reseller_id,
                                              permissions=[p for p in default_permissions("reseller") if p != role])
        await session.flush()
        return tenant_uuid, subscription_id, apply.id

    tenant_uuid, subscription_id, apply_id = await in_session(live, make)
    sub = f"{BASE}/tenants/{tenant_uuid}/subscriptions/{subscription_id}/msteams"
    api_reads = {"wizard": f"{sub}/wizard", "resource-account": f"{sub}/resource_accounts",
                 "voice-apply": f"/api/teamsvoice/v1/tenants/{uuid.uuid4()}/apply/{apply_id}"}
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        await _signed_in(browser, staff.username, staff.password)  # ConnecttoTeams staff: as before
        listed = await browser.get("/console/jobs")
        assert listed.status_code == 200 and all(error in listed.text for error in errors.values()), listed.text
        assert "lacks the right" not in listed.text
        assert consent_url in (await browser.get("/console/customers", params={"q": "Kinds Co"})).text
    for kind, role in roles.items():
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
            await _signed_in(browser, usernames[kind], PASSWORD)
            lacking = f"Your login lacks the right to see {labels[kind]} jobs (role {role})."
            listed = await browser.get("/console/jobs")
            assert all(errors[other] in listed.text for other in roles if other != kind), (kind, listed.text)
            # the wizard's consent link, on the Customers page, with the wizard's role only (it was shown to all)
            customers = (await browser.get("/console/customers", params={"q": "Kinds Co"})).text
            assert "Kinds Co" in customers and (consent_url in customers) == (kind != "wizard"), (kind, customers)
            asked = await browser.get("/console/jobs", params={"kind": kind})  # asked for by name
            for shown in (listed, asked):
                assert shown.status_code == 200 and errors[kind] not in shown.text, (kind, shown.text)
                assert lacking in shown.text and f'<option value="{kind}"' not in shown.text, (kind, shown.text)
            # The API's own answer to that login
            token = (await browser.post("/api/v01/auth/login", json={"username": usernames[kind],
                                                                     "password": PASSWORD})).json()
            read = await browser.get(api_reads[kind], headers={"Authorization": f"Bearer {token['access_token']}"})
            assert read.status_code == 403 and role in read.text, (kind, read.text)
    # An apply is retried only by a login that may read it and start one (no role was asked for)
    for username, role in ((usernames["voice-apply"], roles["voice-apply"]), (no_sync, f"{MST}.sync")):
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
            await _signed_in(browser, username, PASSWORD)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await browser.get("/console/jobs")).text)
            assert csrf is not None
            retried = await browser.post(f"/console/jobs/voice-apply/{apply_id}/retry",
                                         data={"csrf_token": csrf.group(1)})
            assert retried.status_code == 403 and role in retried.text, (username, retried.text)


# --- the Customers page's statements -------------------------------------------------------------------------


def _rows(text: str, table: str) -> list[list[str]]:
    """The cells of each body row of the table labelled `table`, their tags taken out and their spaces collapsed."""
    found = re.search(rf'<table aria-label="{re.escape(table)}">.*?<tbody>(.*?)</tbody>', text, re.S)
    assert found is not None, text
    return [[" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)]


async def _counted_customers(session: Any, reseller_id: int, mark: str, first: int, count: int) -> None:
    """`count` customers (numbered from `first`) of the reseller, each with a subscription of two numbers (one held
    by a Teams user) and a wizard run waiting for consent, and as many ConnecttoTeams enterprises with a consent."""
    from teamsvoice.domain.consent.models import EnterpriseConsent
    from teamsvoice.domain.fusion.models import FusionNumber, FusionWizardRun
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser

    for n in range(first, first + count):
        enterprise_id, _tenant_uuid, subscription_id = await customer_records(
            session, reseller_id, f"Counted {mark} {n:02d}", services=["DIRECT_ROUTING"])
        e164s = [f"+3259{n:04d}{k}" for k in range(2)]
        enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=f"Counted {mark} enterprise {n:02d}")
        session.add_all([*(FusionNumber(subscription_id=subscription_id, e164=e164, iso_code="BE", country_code="32",
                                        nsn=e164[3:], number_type="geographic", source="numbers") for e164 in e164s),
                         TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=f"u{n}@counted.example",
                                        phone_number=e164s[0]),
                         FusionWizardRun(subscription_id=subscription_id, running=False, status="wizard_1_OK",
                                         consent_url=f"https://login.example/consent-{n}"), enterprise])
        await session.flush()
        session.add(EnterpriseConsent(enterprise_id=enterprise.id, consent_name="Presence", tenant_id="t",
                                      granted_by="admin@counted.example"))
    await session.flush()


async def test_customers_page_sends_as_many_statements_however_many_customers_it_shows(  # type: ignore[no-untyped-def]
        live, organisation, monkeypatch) -> None:
    """The Customers page (and its search's live results, at each keystroke) reads its rows a few statements at a time:
    it once read each customer's subscriptions, then each subscription's scope (three statements), numbers (three
    counts) and wizard run, and each ConnecttoTeams enterprise's consents. Counted in process, with the app's own
    engine and this thread's statements only, for 5 customers and for 10. The rows shown are as they were: numbers
    free and assigned (one in quarantine: neither; one held by another customer's user: both, as `count_numbers`
    counts it), the latest wizard run's state and consent link, an onboarded subscription's tenant, a customer without
    a subscription, the enterprises that back no subscription shown and have more than Direct Routing (their consents
    granted and missing) whose name has the words searched for, a page at a time."""
    import threading
    from datetime import timedelta

    from sqlalchemy import event, select

    from teamsvoice.app import create_app
    from teamsvoice.console import pages
    from teamsvoice.core.clock import utcnow
    from teamsvoice.domain.consent.models import EnterpriseConsent
    from teamsvoice.domain.fusion.models import FusionNumber, FusionSubscription, FusionTenant, FusionWizardRun
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser
    from teamsvoice.domain.voice_state.models import NumberQuarantine

    staff = organisation.resellers[0]
    mark = uuid.uuid4().hex[:6]

    def subscription_of(tenant_name: str) -> Any:
        return (select(FusionSubscription).join(FusionTenant, FusionTenant.id == FusionSubscription.fusion_tenant_id)
                .where(FusionTenant.name == tenant_name))

    def number(subscription_id: int, e164: str) -> FusionNumber:
        return FusionNumber(subscription_id=subscription_id, e164=e164, iso_code="BE", country_code="32", nsn=e164[3:],
                            number_type="geographic", source="numbers")

    async def make(session: Any) -> None:
        await _counted_customers(session, staff.reseller_id, mark, 0, 5)
        first = await session.scalar(subscription_of(f"Counted {mark} 00"))
        second = await session.scalar(subscription_of(f"Counted {mark} 01"))
        elsewhere = Enterprise(reseller_id=staff.reseller_id, enterprise_name=f"Elsewhere {mark}")
        backing = Enterprise(reseller_id=staff.reseller_id, enterprise_name=f"Counted {mark} enterprise backing")
        session.add_all([elsewhere, backing])
        await session.flush()
        # 00: a later run (the one shown), a number in quarantine, a number held by another customer's Teams user
        session.add_all([
            FusionWizardRun(subscription_id=first.id, running=False, status="wizard_2_ERROR",
                            consent_url="https://login.example/latest-00"),
            number(first.id, "+32591111111"), number(first.id, "+32592222222"),
            NumberQuarantine(enterprise_id=first.enterprise_id, e164="+32591111111", previous_holder="gone@x.example",
                             until=utcnow() + timedelta(days=1)),
            TeamsVoiceUser(enterprise_id=elsewhere.id, user_principal_name="other@x.example",
                           phone_number="+32592222222")])
        # 01: onboarded (its run's consent link no longer shown), and a second subscription never run, whose
        # enterprise (more than Direct Routing, its name searched for) is shown with it, not among the enterprises
        (await session.get(Enterprise, second.enterprise_id)).registered = True
        (await session.get(Enterprise, second.enterprise_id)).tenant_id = f"tenant-{mark}"
        session.add(FusionSubscription(fusion_tenant_id=second.fusion_tenant_id, name="second",
                                       enterprise_id=backing.id))
        # a customer without a subscription; an enterprise of Direct Routing only is not among the enterprises
        session.add_all([FusionTenant(name=f"Counted {mark} 99 empty", owner_reseller_id=staff.reseller_id),
                         Enterprise(reseller_id=staff.reseller_id, enterprise_name=f"Counted {mark} enterprise DR",
                                    services=["DIRECT_ROUTING"])])
        ctt = await session.scalar(select(Enterprise.id).where(Enterprise.enterprise_name == f"Counted {mark} enterprise 00"))
        session.add(EnterpriseConsent(enterprise_id=ctt, consent_name="CDR", tenant_id="t", granted_by="a@x.example"))
        await session.flush()

    await in_session(live, make)
    app = create_app(live.settings.model_copy(update={"credential_cache_seconds": 0}), jobs_role=None)
    engine = app.state.container.engine.sync_engine
    here, sent = threading.get_ident(), [0]

    def count(*_: Any) -> None:
        if threading.get_ident() == here:  # (the engine is the app's own: nothing else should use it meanwhile)
            sent[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as browser:
            await _signed_in(browser, staff.username, staff.password)

            async def statements(params: dict[str, str], live_results: bool) -> tuple[str, int]:
                headers = {"HX-Request": "true", "HX-Target": "customer-results"} if live_results else {}
                before = sent[0]
                shown = await browser.get("/console/customers", params=params, headers=headers)
                assert shown.status_code == 200, shown.text
                return shown.text, sent[0] - before

            asks = [({}, False), ({"q": f"counted {mark}"}, True)]
            fewer = [await statements(params, live_results) for params, live_results in asks]
            searched = fewer[1][0]
            assert _rows(searched, "Customers (Fusion tenants and subscriptions)") == [
                [f"Counted {mark} 00", "voice", "wizard_2_ERROR consent link", "not linked", "2 / 2"],
                [f"Counted {mark} 01", "voice", "onboarded", f"tenant-{mark}", "1 / 1"],
                [f"Counted {mark} 01", "second", "not_initiated", "not linked", "0 / 0"],
                *([f"Counted {mark} {n:02d}", "voice", "wizard_1_OK consent link", "not linked", "1 / 1"]
                  for n in range(2, 5)),
                [f"Counted {mark} 99 empty", "no subscription yet"],
            ], searched
            missing = "CallApp, CallRecording, Contacts, EnterpriseManagement, UserSync"
            assert _rows(searched, "ConnecttoTeams enterprises") == [
                [f"Counted {mark} enterprise 00", "no", "not linked", "Presence, CDR", missing],
                *([f"Counted {mark} enterprise {n:02d}", "no", "not linked", "Presence", f"CDR, {missing}"]
                  for n in range(1, 5)),
            ], searched
            links = re.findall(r'href="(https://login\.example/[^"]+)"', searched)
            assert links == ["https://login.example/latest-00",
                             *(f"https://login.example/consent-{n}" for n in range(2, 5))], links
            assert fewer[0][0].count(f"Counted {mark} enterprise 0") == 5 and f"Elsewhere {mark}" in fewer[0][0]
            await in_session(live, lambda session: _counted_customers(session, staff.reseller_id, mark, 5, 5))
            more = [await statements(params, live_results) for params, live_results in asks]
            assert len(_rows(more[1][0], "Customers (Fusion tenants and subscriptions)")) == 12, more[1][0]
            assert len(_rows(more[1][0], "ConnecttoTeams enterprises")) == 10, more[1][0]
            # The enterprises a page at a time, each page's links keeping the search
            monkeypatch.setattr(pages, "ENTERPRISES_PAGE", 4)
            seen: list[str] = []
            path: str | None = f"/console/customers?q=counted+{mark}"
            while path is not None:
                listed = (await browser.get(path)).text
                assert f"10 enterprises, page {len(seen) // 4 + 1} of 3" in listed, listed
                seen += [row[0] for row in _rows(listed, "ConnecttoTeams enterprises")]
                found = re.search(r'<a href="([^"]+)">Next enterprises</a>', listed)
                path = html.unescape(found.group(1)) if found else None
                assert path is None or f"q=counted+{mark}" in path
            assert seen == [f"Counted {mark} enterprise {n:02d}" for n in range(10)]
            past = (await browser.get("/console/customers",
                                      params={"q": f"counted {mark}", "enterprise_page": "9"})).text
            assert [row[0] for row in _rows(past, "ConnecttoTeams enterprises")] == seen[8:], past
            # A customer's first subscriptions only (SUBSCRIPTIONS_SHOWN): the enterprise of one not shown is listed
            monkeypatch.setattr(pages, "SUBSCRIPTIONS_SHOWN", 1)
            monkeypatch.setattr(pages, "ENTERPRISES_PAGE", 100)
            first_only = (await browser.get("/console/customers", params={"q": f"counted {mark}"})).text
            assert [row[:2] for row in _rows(first_only, "Customers (Fusion tenants and subscriptions)")][:3] == [
                [f"Counted {mark} 00", "voice"], [f"Counted {mark} 01", "voice"], [f"Counted {mark} 02", "voice"]]
            assert f"Counted {mark} enterprise backing" in [
                row[0] for row in _rows(first_only, "ConnecttoTeams enterprises")], first_only
    finally:
        event.remove(engine, "before_cursor_execute", count)
        await app.state.container.aclose()
    assert [n for _text, n in more] == [n for _text, n in fewer], ([n for _t, n in fewer], [n for _t, n in more])


async def test_drift_card_reads_its_own_tenant_only(live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The tenant page's drift card, loaded at every view of the page, made a whole plan of the tenant from Microsoft,
    read the drift overview of every linked enterprise the staff member sees and counted the open drift events of
    every enterprise of the platform (to show one row of it), then listed every open event of the tenant. It now shows
    what is stored of its own tenant (the plan only on Plan now: tests/console/test_console.py): its drift settings,
    its open events counted and the oldest listed (VOICE_EVENTS_SHOWN, the rest counted), in as many statements with
    one linked enterprise in scope as with six, each with open drift. Counted in process, this thread's statements."""
    import threading
    from datetime import timedelta

    from sqlalchemy import event

    from teamsvoice.app import create_app
    from teamsvoice.console import pages
    from teamsvoice.core.clock import utcnow
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.voice_state.models import DriftEvent, TenantDriftSettings

    staff = organisation.resellers[0]
    mark = uuid.uuid4().hex[:6]

    def drifted(enterprise_id: int, n: int, resolved: bool = False) -> DriftEvent:
        return DriftEvent(enterprise_id=enterprise_id, difference_id=f"number:u{n}@{mark}.example", kind="number",
                          action="assign", drift="number_removed", detail=f"u{n}@{mark}.example lost its number",
                          resolved_at=utcnow() if resolved else None)

    async def linked(session: Any, name: str, events: int) -> tuple[int, str]:
        """A customer linked to a Microsoft tenant, with `events` open drift events: (enterprise id, card's path)."""
        enterprise_id, tenant_uuid, subscription_id = await customer_records(session, staff.reseller_id, f"{name} {mark}")
        enterprise = await session.get(Enterprise, enterprise_id)
        enterprise.registered, enterprise.tenant_id = True, f"tenant-{name}-{mark}"
        session.add_all([drifted(enterprise_id, n) for n in range(events)])
        await session.flush()
        return enterprise_id, f"/console/tenants/{tenant_uuid}/subscriptions/{subscription_id}/voice-state"

    async def make(session: Any) -> tuple[str, str]:
        enterprise_id, path = await linked(session, "Drifting", 3)
        session.add_all([drifted(enterprise_id, 9, resolved=True),  # resolved: neither counted nor listed
                         TenantDriftSettings(enterprise_id=enterprise_id, auto_apply=True,
                                             last_scan_at=utcnow() - timedelta(minutes=5))])
        unlinked_uuid, unlinked_id = await _customer(session, staff.reseller_id, f"Unlinked {mark}")
        return path, f"/console/tenants/{unlinked_uuid}/subscriptions/{unlinked_id}/voice-state"

    async def more(session: Any) -> None:
        for n in range(5):
            await linked(session, f"Elsewhere{n}", 2)

    card, unlinked = await in_session(live, make)
    monkeypatch.setattr(pages, "VOICE_EVENTS_SHOWN", 2)
    app = create_app(live.settings.model_copy(update={"credential_cache_seconds": 0}), jobs_role=None)
    engine = app.state.container.engine.sync_engine
    here, sent = threading.get_ident(), [0]

    def count(*_: Any) -> None:
        if threading.get_ident() == here:
            sent[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as browser:
            await _signed_in(browser, staff.username, staff.password)

            async def statements() -> tuple[str, int]:
                before = sent[0]
                shown = await browser.get(card, headers={"HX-Request": "true"})
                assert shown.status_code == 200, shown.text
                return shown.text, sent[0] - before

            alone = await statements()
            await in_session(live, more)
            among = await statements()
            for text, _n in (alone, among):
                assert re.search(r'data-testid="open-drift">3<', text), text
                assert len(_rows(text, "Open drift events")) == 2, text
                assert "1 more open drift event(s) not listed" in text and "<dd>on</dd>" in text, text
                assert 'data-testid="plan-summary"' not in text and "Plan now" in text, text
            assert (await browser.get(unlinked)).status_code == 404  # no linked tenant: not found, as before
    finally:
        event.remove(engine, "before_cursor_execute", count)
        await app.state.container.aclose()
    assert among[1] == alone[1], (alone[1], among[1])
