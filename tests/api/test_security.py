"""Issue 9: login guessing is throttled (both families, counters in the database), secrets are never cached,
HTML pages are hardened, /metrics obeys its setting, error reasons never echo the caller's input whole."""

import asyncio
import logging

import httpx
import pytest

from teamsvoice.app import create_app
from teamsvoice.settings import Settings
from tests.api.fusion.support import PASSWORD, make_world


async def _ctt_login(client: httpx.AsyncClient, login, password: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    return await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                             data={"username": login.username, "password": password, "grant_type": "password"})


async def test_password_guessing_is_throttled_in_both_families(client: httpx.AsyncClient, live, organisation, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="teamsvoice.security")
    free = live.settings.login_free_failures
    victim, bystander = organisation.resellers
    for _ in range(free):
        assert (await _ctt_login(client, victim, "guess-Passw0rd")).status_code == 400
    locked = await _ctt_login(client, victim, victim.password)  # even the right password waits
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_requests", locked.text
    assert int(locked.headers["Retry-After"]) >= 1 and locked.headers["Cache-Control"] == "no-store"
    assert (await _ctt_login(client, bystander, bystander.password)).status_code == 200  # another account is unaffected
    await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert (await _ctt_login(client, victim, victim.password)).status_code == 200  # the lock ends; success clears it
    assert (await _ctt_login(client, victim, "guess-Passw0rd")).status_code == 400  # counting starts again at one

    world = await make_world(client, live, organisation)
    body = {"username": "reseller", "password": "guess-Passw0rd"}
    for _ in range(free):
        assert (await client.post("/api/v01/auth/login", json=body)).status_code == 401
    locked = await client.post("/api/v01/auth/login", json=body | {"password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == 1029, locked.text
    assert int(locked.headers["Retry-After"]) >= 1
    assert (await client.post("/api/v01/auth/login", json={"username": "system", "password": PASSWORD})).status_code == 200
    await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.2)
    assert await world.login("reseller")

    events = [r.getMessage() for r in caplog.records if r.name == "teamsvoice.security"]
    assert any("login failed family=connecttoteams" in e for e in events), events
    assert any("login refused while locked family=fusion" in e for e in events), events
    assert not any("guess-Passw0rd" in e or PASSWORD in e for e in events)


async def test_secrets_are_not_cached_and_pages_are_hardened(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    token = await _ctt_login(client, organisation.resellers[0], organisation.resellers[0].password)
    assert token.status_code == 200 and "no-store" in token.headers["Cache-Control"]
    await make_world(client, live, organisation)
    fusion = await client.post("/api/v01/auth/login", json={"username": "reseller", "password": PASSWORD})
    assert fusion.status_code == 200 and fusion.headers["Cache-Control"] == "no-store"
    assert fusion.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/docs", "/restricted/handleResponse?error=access_denied&state=x"):
        page = await client.get(path)
        assert page.headers["content-type"].startswith("text/html"), (path, page.status_code)
        assert page.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_error_reasons_quote_only_a_prefix_of_the_input(client: httpx.AsyncClient, live, organisation) -> None:  # type: ignore[no-untyped-def]
    login = organisation.resellers[0]
    bearer = {"Authorization": f"Bearer {(await _ctt_login(client, login, login.password)).json()['access_token']}"}
    huge = "A" * 200_000
    answer = await client.post("/enterprise/getActionItemUrl", headers=bearer,
                               json={"actionType": huge, "enterpriseName": "x", "redirectUrl": "http://127.0.0.1:9/x"})
    assert answer.status_code == 400 and len(answer.text) < 1000, answer.text[:300]


@pytest.mark.parametrize(("access", "peer", "headers", "status"), [
    ("loopback", "127.0.0.1", {}, 200), ("loopback", "203.0.113.7", {}, 404), ("off", "127.0.0.1", {}, 404),
    ("token", "203.0.113.7", {"Authorization": "Bearer metrics-secret"}, 200),
    ("token", "127.0.0.1", {"Authorization": "Bearer wrong"}, 401), ("token", "127.0.0.1", {}, 401),
])
async def test_metrics_obey_their_setting(tmp_path, access: str, peer: str, headers: dict, status: int) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, metrics_access=access, metrics_token="metrics-secret")  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=create_app(settings, jobs_role=None), client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://teamsvoice.test") as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    assert ("teamsvoice_http_requests_total" in response.text) == (status == 200)


async def test_unknown_usernames_cost_the_same_check_in_both_families(client: httpx.AsyncClient, live, organisation, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Timing must not tell which usernames exist: an unknown one is checked against a decoy hash too."""
    from teamsvoice.core import security

    checked: list[str] = []
    real = security.verify_secret
    monkeypatch.setattr(security, "verify_secret", lambda value, hashed: checked.append(hashed) or real(value, hashed))
    login = organisation.resellers[0]
    answer = await client.post("/oauth/token", auth=(login.client_id, login.client_secret),
                               data={"username": "nobody-here", "password": "guess-Passw0rd", "grant_type": "password"})
    assert answer.status_code == 400 and len(checked) == 2  # the client's secret, then the (decoy) password
    answer = await client.post("/oauth/token", auth=("no-such-client", "guess"),
                               data={"username": login.username, "password": "x", "grant_type": "password"})
    assert answer.status_code in (400, 401) and len(checked) == 3
    answer = await client.post("/api/v01/auth/login", json={"username": "nobody-here", "password": "guess-Passw0rd"})
    assert answer.status_code == 401 and len(checked) == 4
