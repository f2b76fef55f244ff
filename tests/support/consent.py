"""Walks a Global Administrator through Microsoft's sign-in and consent pages, as a browser would."""

from dataclasses import dataclass

import httpx

from tests.support.browser import forms, submit


@dataclass
class ConsentResult:
    callback: httpx.Response | None  # what teamsvoice showed the browser at the end (None: not posted)
    form_post_fields: dict[str, str]  # what Microsoft posted (or would post) to /restricted/handleResponse


async def sign_in_and_consent(action_url: str, username: str, password: str, ca_cert: str, *, accept: bool = True,
                              post: bool = True) -> ConsentResult:
    """`post=False`: stops at Microsoft's answer, the form the browser would post to teamsvoice (not posted)."""
    async with httpx.AsyncClient(verify=ca_cert, timeout=60, follow_redirects=False) as browser:
        page = await browser.get(action_url)
        assert page.status_code == 200, page.text
        sign_in = forms(page.text)[0]
        assert {"username", "password"} <= set(sign_in.fields) | {"username", "password"}
        answer = await submit(browser, str(page.url), sign_in, username=username, password=password)
        url = str(answer.request.url)
        found = forms(answer.text)
        # A consent page (Accept / Cancel) unless consent already exists.
        if found and any(name == "consent" for name, _ in found[0].buttons):
            answer = await submit(browser, url, found[0], consent="accept" if accept else "cancel")
            found = forms(answer.text)
        assert answer.status_code in (200, 302), answer.text
        if answer.status_code == 302:
            callback = await browser.get(answer.headers["Location"])
            return ConsentResult(callback, {})
        form_post = found[0]
        if not post:
            return ConsentResult(None, dict(form_post.fields))
        callback = await submit(browser, str(answer.request.url), form_post)
        return ConsentResult(callback, dict(form_post.fields))
