"""Signing in from a sign-in form open in another tab (found by a probe in a browser): every load of the form gave
the browser a new login token, so only the form loaded last could sign in; the others answered 403 "The form
expired". Staff meet it when a session ends with several console tabs open: each is sent to the sign-in page."""

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
