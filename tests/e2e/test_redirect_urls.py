"""Consent webhooks carry a Global Administrator's Microsoft token: they go only to a registered origin
(parsed, not prefix-matched), the check runs again at delivery time, and redirects are never followed."""

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from teamsvoice.core.db import sync_url
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.orgs.models import Reseller
from teamsvoice.domain.orgs.service import register_redirect_url
from tests.support.consent import sign_in_and_consent
from tests.support.ctt import bearer
from tests.support.onboarding import Onboarding
from tests.support.database import in_session

BYPASSES = [
    "https://hooks.good.invalid@evil.invalid/steal",
    "https://hooks.good.invalid.evil.invalid/x",
    "https://hooks.good.invalid%2F@evil.invalid/steal",
    "https://hooks.good.invalid%2f@evil.invalid/steal",
    "https://hooks.good.invalid\\@evil.invalid/steal",
    "https://hooks.good.invalid#@evil.invalid/steal",
    "https://evil.invalid\\@hooks.good.invalid/",
    "https://evil.invalid#@hooks.good.invalid/",
    "https://user:pass@hooks.good.invalid/x",
    "https://hooks.good.invalid:8443/x",
    "http://hooks.good.invalid/x",
    "https://hooks.good.invalid /x",
    "https://hooks.good.invalid\t.evil.invalid/x",
    "https://hooks.good.invalid/base/../admin",  # under the /base registration, then out of it
    "https://hooks.good.invalid/base/%2e%2e/admin",
    "https://hooks.good.invalid/base/%2F..%2Fadmin",
    "https://partner.example/hookshijack",  # /hooks is registered: not a path segment prefix
    "https://xn--bcher-kva.example.evil.invalid/hooks/x",
    "//hooks.good.invalid/x",
    "hooks.good.invalid/x",
]
ACCEPTED = {
    "https://hooks.good.invalid": "https://hooks.good.invalid",
    "https://HOOKS.Good.invalid:443/x?y=1": "https://hooks.good.invalid/x?y=1",
    "https://hooks.good.invalid./deep/er": "https://hooks.good.invalid/deep/er",
    "https://partner.example/hooks/a": "https://partner.example/hooks/a",
    "https://bücher.example/hooks": "https://xn--bcher-kva.example/hooks",
}


async def _register(live, reseller_id: int, *urls: str) -> None:  # type: ignore[no-untyped-def]
    async def work(session) -> None:  # type: ignore[no-untyped-def]
        for url in urls:
            await register_redirect_url(session, reseller_id, url)
    await in_session(live, work)


@pytest.fixture
async def onboarding(client, live, organisation, receiver) -> Onboarding:  # type: ignore[no-untyped-def]
    receiver.reset()
    onboarding = Onboarding(client, live, organisation, receiver, live.emulator.tenants[0])
    await onboarding.create()
    await _register(live, onboarding.login.reseller_id, "https://hooks.good.invalid", "https://partner.example/hooks/",
                    "https://Bücher.example/hooks")
    return onboarding


async def _action(onboarding: Onboarding, redirect: str) -> httpx.Response:
    return await onboarding.client.post("/enterprise/getActionItemUrl", headers=bearer(onboarding.token), json={
        "actionType": "REGISTRATION", "enterpriseName": onboarding.name, "redirectUrl": redirect})


def _stored_redirects(live) -> list[str]:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(live.settings.effective_database_url))
    with engine.connect() as connection:
        rows = [r[0] for r in connection.execute(text("SELECT redirect_url FROM action_requests ORDER BY id"))]
    engine.dispose()
    return rows


async def test_redirect_url_bypasses_are_refused(onboarding: Onboarding, live) -> None:
    for url in BYPASSES:
        response = await _action(onboarding, url)
        assert response.status_code == 400, (url, response.text)
        assert "evil.invalid" not in response.json()["message"], response.text  # the reason does not echo the URL
    for url in ACCEPTED:
        response = await _action(onboarding, url)
        assert response.status_code == 200, (url, response.text)
    # What was accepted is stored normalised: the URL a delivery goes to is the URL that was checked.
    assert _stored_redirects(live) == list(ACCEPTED.values())


async def test_registration_is_parsed_too(live, organisation) -> None:  # type: ignore[no-untyped-def]
    for bad in ("http://hooks.good.invalid", "https://a@hooks.good.invalid", "https://hooks.good.invalid/?q=1",
                "https://hooks.good.invalid#x", "hooks.good.invalid"):
        with pytest.raises(ValidationFailed):
            await _register(live, organisation.resellers[0].reseller_id, bad)


def _delivery(live) -> tuple[str, int, str | None]:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(live.settings.effective_database_url))
    with engine.connect() as connection:
        row = connection.execute(text("SELECT status, attempts, last_error FROM webhook_deliveries")).one()
    engine.dispose()
    return row[0], row[1], row[2]


async def _final_delivery(live) -> tuple[str, int, str | None]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60  # (a delivery is a workflow of the engine: seconds on a loaded machine)
    while time.monotonic() < deadline:
        try:
            status, attempts, error = _delivery(live)
            if status != "pending":
                return status, attempts, error
        except Exception:  # noqa: BLE001 - the row appears with the consent callback
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"the delivery did not end: {_delivery(live)}")


async def _consent(onboarding: Onboarding, action_url: str) -> None:
    admin = onboarding.tenant["globalAdmin"]
    result = await sign_in_and_consent(action_url, admin["username"], admin["password"], str(onboarding.live.emulator.ca_cert_path))
    assert result.callback.status_code == 200, result.callback.text


async def test_the_check_runs_again_at_delivery_time(onboarding: Onboarding, live) -> None:
    response = await _action(onboarding, "https://hooks.good.invalid/consents")
    assert response.status_code == 200, response.text

    async def withdraw(session) -> None:  # type: ignore[no-untyped-def]
        reseller = await session.scalar(select(Reseller).where(Reseller.id == onboarding.login.reseller_id))
        reseller.registered_redirect_urls = ["https://partner.example/hooks/"]
    await in_session(live, withdraw)
    await _consent(onboarding, response.text)
    status, attempts, error = await _final_delivery(live)
    assert (status, attempts) == ("refused", 0) and "not registered" in (error or "")


class _Redirector:
    """A loopback endpoint that answers every POST with a redirect to `target`."""

    def __init__(self, target: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(307)
                self.send_header("Location", target)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


async def test_deliveries_never_follow_redirects(onboarding: Onboarding, live, receiver) -> None:  # type: ignore[no-untyped-def]
    redirector = _Redirector(f"{receiver.url}/stolen")
    try:
        response = await _action(onboarding, f"{redirector.url}/hook")
        assert response.status_code == 200, response.text
        await _consent(onboarding, response.text)
        status, attempts, error = await _final_delivery(live)
    finally:
        redirector.server.shutdown()
    assert (status, attempts) == ("refused", 1) and "redirects are not followed" in (error or "")
    assert receiver.attempts == 0


async def test_registrations_at_the_same_moment_are_all_kept(live, organisation) -> None:  # type: ignore[no-untyped-def]
    """Four `register-redirect-url` runs at once for one reseller each said it registered its URL; only the last
    was stored (each read the list before the others wrote it)."""
    reseller_id = organisation.resellers[1].reseller_id
    urls = [f"https://race-{n}.good.invalid/hooks" for n in range(4)]
    await asyncio.gather(*(_register(live, reseller_id, url) for url in urls))

    async def stored(session) -> list[str]:  # type: ignore[no-untyped-def]
        return list((await session.get(Reseller, reseller_id)).registered_redirect_urls)
    assert set(urls) <= set(await in_session(live, stored))
