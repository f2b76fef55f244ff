"""The console's forms (found by a probe in a browser). Signing in from a sign-in form open in another tab: every
load of the form gave the browser a new login token, so only the form loaded last could sign in; the others answered
403 "The form expired". Staff meet it when a session ends with several console tabs open: each is sent to the sign-in
page."""

import httpx
import pytest

from tests.support.browser import forms, submit


@pytest.mark.any_backend  # the sign-in only
async def test_any_open_sign_in_form_signs_in(live, organisation) -> None:  # type: ignore[no-untyped-def]
    staff = organisation.resellers[0]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        first = await browser.get("/console/login")  # tab A
        second = await browser.get("/console/login")  # tab B, loaded later
        signed = await submit(browser, str(first.url), forms(first.text)[0], username=staff.username, password=staff.password)
        assert signed.status_code == 303 and signed.headers["location"] == "/console/customers", signed.text
        again = await submit(browser, str(second.url), forms(second.text)[0], username=staff.username, password=staff.password)
        assert again.status_code == 303, again.text
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as other_browser:  # a form from elsewhere still fails
        refused = await submit(other_browser, str(first.url), forms(first.text)[0], username=staff.username,
                               password=staff.password)
        assert refused.status_code == 403, refused.text


@pytest.mark.any_backend
async def test_a_new_customers_names_follow_the_apis_rules(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """The console stored a 5,000-character name, or one with a tab and a line break, that the Fusion API refuses."""
    staff = organisation.resellers[0]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        form_page = await browser.get("/console/login")
        await submit(browser, str(form_page.url), forms(form_page.text)[0], username=staff.username, password=staff.password)
        customers = await browser.get("/console/customers")
        [create] = [f for f in forms(customers.text) if f.method == "post" and f.action.endswith("/console/customers")]
        for name, words in (("x" * 5000, "Customer name: at most 200 characters"),
                            ("Tab\tNew\nLine", "Customer name: must not contain NUL or other control characters")):
            refused = await submit(browser, str(customers.url), create, name=name)
            assert refused.status_code == 400 and words in refused.text, refused.text
        listed = await browser.get("/console/customers")
        assert "xxxxxxxxxx" not in listed.text and "Tab" not in listed.text


@pytest.mark.any_backend
async def test_signing_in_again_returns_to_the_page(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """A staff member whose session ended was always sent to the customers' list after signing in again."""
    staff = organisation.resellers[0]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        sent = await browser.get("/console/audit?page=1")  # not signed in
        assert sent.status_code == 303 and sent.headers["location"] == "/console/login?next=%2Fconsole%2Faudit%3Fpage%3D1"
        form_page = await browser.get(sent.headers["location"])
        signed = await submit(browser, str(form_page.url), forms(form_page.text)[0], username=staff.username,
                              password=staff.password)
        assert signed.status_code == 303 and signed.headers["location"] == "/console/audit?page=1", signed.text
        for elsewhere in ("//evil.example/x", "https://evil.example/console/", "/console/login", "/api/v01/x"):
            form_page = await browser.get("/console/login", params={"next": elsewhere})
            signed = await submit(browser, str(form_page.url), forms(form_page.text)[0], username=staff.username,
                                  password=staff.password)
            assert signed.headers["location"] == "/console/customers", (elsewhere, signed.headers)


async def test_a_consent_link_for_an_enterprise_whose_name_another_has(  # type: ignore[no-untyped-def]
        live, organisation) -> None:
    """The enterprise page asked for the link by the enterprise's name: a master reseller's staff, who sees two
    resellers' enterprises of one name, got "2 enterprises named ... give enterpriseId too" (409), and no link."""
    from teamsvoice.domain.orgs.models import Enterprise
    from teamsvoice.domain.orgs.service import register_redirect_url
    from tests.support.database import in_session

    first, second = (r.reseller_id for r in organisation.resellers[:2])

    async def make(session) -> int:  # type: ignore[no-untyped-def]
        twins = [Enterprise(reseller_id=reseller, enterprise_name="Twin Corp") for reseller in (first, second)]
        session.add_all(twins)
        await register_redirect_url(session, first, "https://hooks.twin.invalid/")
        await session.flush()
        return twins[0].id

    enterprise_id = await in_session(live, make)
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        form_page = await browser.get("/console/login")
        await submit(browser, str(form_page.url), forms(form_page.text)[0], username=organisation.master.username,
                     password=organisation.master.password)
        enterprise = await browser.get(f"/console/enterprises/{enterprise_id}")
        [get_link] = [f for f in forms(enterprise.text) if f.action.endswith("/consent-link")]
        linked = await submit(browser, str(enterprise.url), get_link, action_type="REGISTRATION",
                              redirect_url="https://hooks.twin.invalid/")
        assert linked.status_code == 200 and "Send this REGISTRATION link" in linked.text, linked.text
