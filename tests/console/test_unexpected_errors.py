"""An unexpected failure on a console page is answered as the console's other errors are, a page for a person
(HTML, 500), not an API family's JSON envelope; the details go to the server log only. So are an address the
console has no page at and an address whose id is no number."""

import httpx
import pytest

from teamsvoice.console import pages
from tests.support.browser import forms, submit


@pytest.mark.any_backend  # nothing of the database: the live server's error handling
async def test_an_unexpected_failure_on_a_console_page_is_an_html_page(client: httpx.AsyncClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(pages, "page", broken)
    answer = await client.get("/console/login")
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side; it has been logged." in answer.text
    assert "secret detail" not in answer.text


@pytest.mark.any_backend  # nothing of the database but the sign-in: the live server's error handling
async def test_bad_console_addresses_are_html_pages(live, organisation) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as browser:
        assert (await browser.get("/console/nosuchpage")).headers["content-type"].startswith("text/html")
        form_page = await browser.get("/console/login")
        [form] = forms(form_page.text)
        staff = organisation.resellers[0]
        signed = await submit(browser, str(form_page.url), form, username=staff.username, password=staff.password)
        assert signed.status_code == 303, signed.text
        for address, status, words in (("/console/nosuchpage", 404, "The console has no page at this address"),
                                       ("/console/audit/abc", 400, "entry_id"), ("/console/enterprises/abc", 400, "enterprise_id"),
                                       ("/console/audit?cursor=abc", 400, "cursor")):
            answer = await browser.get(address)
            assert answer.status_code == status and answer.headers["content-type"].startswith("text/html"), (address, answer.text)
            assert words in answer.text and '"timestamp"' not in answer.text, (address, answer.text)
        # An error page of a signed-in staff member keeps the navigation and the sign-out (it had neither).
        missing = await browser.get("/console/enterprises/999999")
        assert missing.status_code == 404 and "Sign out" in missing.text and 'href="/console/jobs"' in missing.text
        # An old link's page number (the audit pages are cursors now: api/teamsvoice/paging.py) opens the first page.
        # (The sign-in above is an entry at least.)
        far = await browser.get("/console/audit?page=99999")
        assert far.status_code == 200 and "No entries match." not in far.text and "page=99998" not in far.text, far.text
